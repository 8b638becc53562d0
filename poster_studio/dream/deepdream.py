"""Deep dream (Mordvintsev, Olah & Tyka 2015): gradient ascent on a picture to amplify what a layer sees in it.

An octave pyramid (the picture at 1/scale^k of its size, coarse first; the detail dreamt at one octave is carried
up to the next), a random roll of the picture before each step (jitter, so the grid of the network's strides does
not imprint), and the gradient divided by its mean magnitude (so one strength fits every layer and picture).
`layer_objective` maximises the L2 norm of a layer; `guided` adds a pull towards genres, each gradient normalised
on its own so neither drowns the other.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor], torch.Tensor]  # picture (1, 3, h, w) in [0, 1] -> value to MAXIMISE


def normalized_grad(loss_fn: Loss, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(x), x)
    return g / (g.abs().mean() + 1e-8)


def pyramid_sizes(height: int, width: int, octaves: int, scale: float, min_side: int = 64) -> list[tuple[int, int]]:
    """(H, W) per octave, smallest first, ending at the full size; octaves that would be smaller than min_side
    are skipped."""
    sizes = []
    for k in range(octaves - 1, -1, -1):
        h, w = round(height / scale ** k), round(width / scale ** k)
        if min(h, w) >= min_side or k == 0:
            sizes.append((h, w))
    return sizes


def deep_dream(picture: torch.Tensor, losses: list[tuple[Loss, float]], *, octaves: int = 4, scale: float = 1.4,
               iterations: int = 10, step: float = 0.01, jitter: int = 24, generator: Optional[torch.Generator] = None,
               progress: Optional[Callable[[int, int, torch.Tensor], None]] = None,
               cancel: Optional[threading.Event] = None) -> tuple[torch.Tensor, bool]:
    """Dream on `picture` (1, 3, H, W) in [0, 1]. `losses`: (loss to maximise, weight) pairs; each one's gradient
    is normalised before weighting. Returns (picture, finished): finished is False when `cancel` stopped it, and the
    picture is then the dream so far at full size."""
    H, W = picture.shape[-2:]
    sizes = pyramid_sizes(H, W, octaves, scale)
    total, done = len(sizes) * iterations, 0
    detail = torch.zeros(1, 3, *sizes[0], device=picture.device)
    x = picture
    with torch.inference_mode(False), torch.enable_grad():
        for size in sizes:
            base = picture if size == (H, W) else F.interpolate(picture, size=size, mode="bilinear",
                                                                antialias=True, align_corners=False)
            if detail.shape[-2:] != size:
                detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
            x = (base + detail).clamp(0, 1)
            for _ in range(iterations):
                if cancel is not None and cancel.is_set():
                    return _full_size(x, (H, W), picture, detail, base), False
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
                rolled = torch.roll(x, (dy, dx), (2, 3))
                g = sum(w * normalized_grad(fn, rolled) for fn, w in losses if w)
                x = (x + step * torch.roll(g, (-dy, -dx), (2, 3))).clamp(0, 1).detach()
                done += 1
                if progress is not None:
                    progress(done, total, x)
            detail = x - base
    return x, True


def _full_size(x, hw, picture, detail, base) -> torch.Tensor:
    """The dream so far at the picture's full size: the detail dreamt at this octave, upsampled onto the picture."""
    if x.shape[-2:] == hw:
        return x
    d = F.interpolate(x - base, size=hw, mode="bilinear", align_corners=False)
    return (picture + d).clamp(0, 1)
