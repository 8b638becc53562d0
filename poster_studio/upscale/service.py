"""`Upscaler`: the poster upscaling service over a trained `PosterUpscaler` (checkpoints/upscaler).

`upscale(img, size=(400, 600))` runs the network as many times as it takes to get within MAX_FINAL_STRETCH of
the size (a x2 network: once from a ~200x300 poster to 400x600), then resizes with Lanczos to exactly `size`.
A picture already at least that large is only resized. The output is stretched to `size` when its aspect
differs (use images.fit_image first to crop instead); `image_notes(result)` says so. Arguments are checked
once, in `check_inputs`; its limits are the class attributes.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch
from PIL import Image

from .. import hub
from ..checks import check_size
from ..device import default_device
from ..images import NOTE_KEY, ImageInput, image_notes, load_image, needs_fitting, to_pil, to_tensor
from .model import PosterUpscaler

CHECKPOINT_NAME = "upscaler"


class Upscaler:
    """Poster upscaling service (see the module docstring)."""

    MIN_SIDE, MAX_SIDE = 16, 2048     # output size, each side
    DEFAULT_SIZE = (400, 600)         # (W, H)
    MAX_FINAL_STRETCH = 1.25          # the final Lanczos resize enlarges by at most this; more takes a network pass

    def __init__(self, net: PosterUpscaler, device: Optional[torch.device] = None):
        self.device = device or default_device()
        self.net = net.eval().requires_grad_(False).to(self.device)

    @property
    def scale(self) -> int:
        return self.net.scale

    @classmethod
    def load(cls, directory: Optional[str | Path] = None, hub_repo: Optional[str] = None) -> "Upscaler":
        return cls(hub.load_model(PosterUpscaler, CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory))

    def check_inputs(self, *, image: Any = None, size: Any = DEFAULT_SIZE) -> dict:
        """`image` as an RGB PIL image and `size` as (W, H), or InvalidImageError / InvalidArgumentError (one line)."""
        w, h = check_size("Size", size, self.MIN_SIDE, self.MAX_SIDE)
        return {"image": load_image(image), "size": (w, h)}

    def passes(self, src: tuple[int, int], size: tuple[int, int]) -> int:
        """Network passes from `src` (W, H) towards `size`: the fewest after which the final resize enlarges
        by at most MAX_FINAL_STRETCH."""
        stretch = max(size[0] / src[0], size[1] / src[1])
        if stretch <= self.MAX_FINAL_STRETCH:
            return 0
        return max(0, math.ceil(math.log(stretch / self.MAX_FINAL_STRETCH, self.scale) - 1e-9))

    @torch.inference_mode()
    def upscale(self, image: ImageInput, size: Any = DEFAULT_SIZE) -> Image.Image:
        """`image` at `size` (W, H): network passes at its integer scale, then a Lanczos resize to the exact size."""
        a = self.check_inputs(image=image, size=size)
        img, (w, h) = a["image"], a["size"]
        notes = image_notes(img)
        if needs_fitting(img, w, h):
            notes.append(f"Your {img.width}x{img.height} picture was stretched to {w}x{h} (a different shape).")
        n = self.passes(img.size, (w, h))
        if n:
            x = to_tensor(img)[None].to(self.device)
            for _ in range(n):
                x = self.net(x).clamp(0, 1)
            img = to_pil(x)
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.LANCZOS)
        elif img is image:
            img = img.copy()  # the caller's picture, already at `size`: never mark it with our notes
        img.info[NOTE_KEY] = notes
        return img
