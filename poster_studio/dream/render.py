"""Feature visualisation against a network: the recipe that makes optimised images readable (Olah et al., Distill
2017 "Feature Visualization"; Mordvintsev et al., Distill 2018 "Differentiable Image Parameterizations").

- `FourierImage`: the picture as a 1/f-scaled Fourier spectrum in decorrelated colour space (plus an optional
  base picture, in logit space, that the spectrum adds detail to): gradient steps change structure at all scales
  evenly instead of sprinkling high-frequency noise.
- `random_view`: transformation robustness, a fresh random jitter / scale / rotation / crop each step, so only
  what survives every view can raise the objective.
- `octave_sizes`: coarse-to-fine sizes for large pictures (each octave starts from the last one, upsampled).
- `optimise`: the loop (Adam, previews on a timer, cancellation keeps the image so far).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..images import to_pil
from ..progress import Steps

# Square root of the colour correlation of natural images (ImageNet), as measured in the Feature Visualization
# article: a standard-normal vector times this matrix has the colour statistics of photographs.
COLOR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])
COLOR_CORRELATION_SQRT = COLOR_CORRELATION_SQRT / COLOR_CORRELATION_SQRT.norm(dim=0).max()

# (fraction, preview or None); the fraction is a progress.Steps float: it also says step `done` of `total`
Progress = Optional[Callable[[float, Optional[Image.Image]], None]]
Objective = Callable[[torch.Tensor, int], torch.Tensor]  # (views (B, 3, h, w) in [0, 1], step) -> loss to minimise


def logit(x: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


class FourierImage(nn.Module):
    """An RGB picture (1, 3, H, W) in [0, 1] = sigmoid(base + decorrelate(irfft2(spectrum * 1/f))).

    `base` (logits, (1, 3, H, W)) is a starting picture (the user's, or the previous octave); without one the
    picture starts as faint coloured noise around grey. `sd` is the initial spectrum's standard deviation."""

    def __init__(self, height: int, width: int, base: Optional[torch.Tensor] = None, sd: float = 0.01,
                 decay: float = 1.0, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.size = (int(height), int(width))
        fy = torch.fft.fftfreq(height)[:, None]
        fx = torch.fft.rfftfreq(width)[None, :]
        freqs = torch.sqrt(fy ** 2 + fx ** 2)
        scale = 1.0 / torch.clamp(freqs, min=1.0 / max(height, width)) ** decay
        self.register_buffer("scale", scale[None, :, :, None], persistent=False)  # with an orthonormal FFT
        init = torch.randn(3, height, width // 2 + 1, 2, generator=generator) * sd
        self.spectrum = nn.Parameter(init)
        self.register_buffer("base", base.detach().clone() if base is not None else
                             torch.zeros(1, 3, height, width), persistent=False)

    def forward(self) -> torch.Tensor:
        spec = torch.view_as_complex((self.spectrum * self.scale).contiguous())
        img = torch.fft.irfft2(spec, s=self.size, norm="ortho")[None] / 4.0  # (1, 3, H, W) decorrelated colour
        img = torch.einsum("bchw,dc->bdhw", img, COLOR_CORRELATION_SQRT.to(img))
        return torch.sigmoid(self.base + img)


def octave_sizes(height: int, width: int, octaves: int, factor: float = 1.5,
                 min_side: int = 96) -> list[tuple[int, int]]:
    """Coarse-to-fine (H, W) sizes ending at (height, width); fewer octaves when the coarsest would be tiny."""
    sizes = [(height, width)]
    for _ in range(max(0, octaves - 1)):
        h, w = sizes[0]
        h2, w2 = round(h / factor), round(w / factor)
        if min(h2, w2) < min_side:
            break
        sizes.insert(0, (h2, w2))
    return sizes


def random_view(x: torch.Tensor, out_size: tuple[int, int], generator: torch.Generator, *, jitter: float = 0.05,
                scale: tuple[float, float] = (0.9, 1.1), degrees: float = 5.0,
                crop: tuple[float, float] = (0.6, 1.0)) -> torch.Tensor:
    """One randomly transformed view of x (1, 3, H, W), resized to out_size (h, w): rotate/scale/translate
    (reflect-padded so no black corners), then a crop of `crop` of each side (same aspect), differentiable."""
    H, W = x.shape[-2:]
    r = lambda lo, hi: lo + (hi - lo) * float(torch.rand((), generator=generator))  # noqa: E731
    pad = int(0.1 * max(H, W))
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    angle = r(-degrees, degrees)
    shift = [round(r(-jitter, jitter) * W), round(r(-jitter, jitter) * H)]
    xp = TF.affine(xp, angle=angle, translate=shift,
                   scale=r(*scale), shear=[0.0, 0.0], interpolation=InterpolationMode.BILINEAR)
    xp = xp[..., pad: pad + H, pad: pad + W]
    c = r(*crop)
    ch, cw = max(8, round(H * c)), max(8, round(W * c))
    top, left = int(r(0, H - ch + 1e-6)), int(r(0, W - cw + 1e-6))
    return TF.resized_crop(xp, top, left, ch, cw, list(out_size), interpolation=InterpolationMode.BILINEAR,
                           antialias=True)


def optimise(image: FourierImage, objective: Objective, steps: int, *, lr: float = 0.05,
             progress: Optional[Callable[[int, torch.Tensor], None]] = None,
             cancel: Optional[threading.Event] = None) -> tuple[torch.Tensor, int]:
    """Adam on the picture's parameters for `steps`; `progress(done, picture)` after each step. Returns (picture,
    steps done): fewer than `steps` when `cancel` was set."""
    opt = torch.optim.Adam(image.parameters(), lr=lr)
    done = 0
    with torch.inference_mode(False), torch.enable_grad():
        for step in range(steps):
            if cancel is not None and cancel.is_set():
                break
            opt.zero_grad(set_to_none=True)
            x = image()
            loss = objective(x, step)
            loss.backward()
            opt.step()
            done += 1
            if progress is not None:
                progress(done, x.detach())
        with torch.no_grad():
            return image().detach(), done


class PreviewTimer:
    """Calls `progress(fraction, preview)` every step, with a preview picture at most every `every_s` seconds."""

    def __init__(self, progress: Progress, total: int, every_s: float = 2.0):
        self.progress, self.total, self.every_s = progress, max(1, total), every_s
        self.done = 0
        self.last = time.monotonic()

    def __call__(self, done_in_stage: int, x: torch.Tensor, final: bool = False) -> None:
        if self.progress is None:
            return
        self.done += 1
        now = time.monotonic()
        preview = None
        if final or now - self.last >= self.every_s:
            preview, self.last = to_pil(x.clamp(0, 1).cpu()), now
        self.progress(Steps(self.done, self.total), preview)
