"""Training pairs for the upscaler: a realistic degradation of a poster crop (a simplified Real-ESRGAN
first-order model), with torchvision.transforms.v2 ops on tensors.

`Degradation(scale)(hr, generator)`: high-resolution crop (3, H, W) in [0, 1] -> low-resolution crop
(3, H // scale, W // scale) in [0, 1], through, each with its own probability and random strength:
Gaussian blur (sigma 0.2-1.6) -> downscale by `scale` (bicubic, bilinear or area) -> Gaussian noise (colour or
grey, sigma up to 6/255) -> JPEG re-encode (quality 40-95). A share `clean_prob` of the pairs gets only the
plain antialiased bicubic downscale of the evaluation protocol, so the network also learns clean inputs. Every
random choice comes from `generator`, so a training batch is a function of its seed (resumable runs repeat it
exactly).

`bicubic_downscale(img, scale)`: the plain evaluation protocol (PIL bicubic, antialiased), on PIL images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

RESIZE_MODES = ("bicubic", "bilinear", "area")


@dataclass(frozen=True)
class Degradation:
    """Random blur -> downscale -> noise -> JPEG (see the module docstring); the fields are the ranges."""

    scale: int = 2
    clean_prob: float = 0.2
    blur_prob: float = 0.6
    blur_sigma: tuple[float, float] = (0.2, 1.6)
    resize_modes: tuple[str, ...] = RESIZE_MODES
    noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (1 / 255, 6 / 255)
    gray_noise_prob: float = 0.4
    jpeg_prob: float = 0.7
    jpeg_quality: tuple[int, int] = (40, 95)

    def __call__(self, hr: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if hr.dim() != 3 or hr.shape[0] != 3:
            raise ValueError(f"Degradation takes one RGB image (3, H, W), got {tuple(hr.shape)}")
        h, w = hr.shape[-2] // self.scale, hr.shape[-1] // self.scale
        if min(h, w) < 1:
            raise ValueError(f"A {hr.shape[-1]}x{hr.shape[-2]} crop is too small to downscale by {self.scale}")

        def rand() -> float:
            return float(torch.rand((), generator=generator))

        def uniform(lo: float, hi: float) -> float:
            return lo + (hi - lo) * rand()

        x = hr.float()
        if rand() < self.clean_prob:
            return TF.resize(x, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
        if rand() < self.blur_prob:
            sigma = uniform(*self.blur_sigma)
            k = 2 * max(1, round(3 * sigma)) + 1
            x = TF.gaussian_blur(x, [k, k], [sigma, sigma])
        mode = self.resize_modes[int(rand() * len(self.resize_modes)) % len(self.resize_modes)]
        if mode == "area":
            x = F.interpolate(x[None], size=(h, w), mode="area")[0]
        else:
            x = TF.resize(x, [h, w], interpolation=InterpolationMode(mode), antialias=True)
        if rand() < self.noise_prob:
            sigma = uniform(*self.noise_sigma)
            shape = (1, h, w) if rand() < self.gray_noise_prob else (3, h, w)
            x = x + sigma * torch.randn(shape, generator=generator)
        x = x.clamp(0, 1)
        if rand() < self.jpeg_prob:
            q = int(round(uniform(*self.jpeg_quality)))
            x8 = TF.to_dtype(x, torch.uint8, scale=True)
            x = TF.to_dtype(TF.jpeg(x8, q), torch.float32, scale=True)
        return x.contiguous()


def bicubic_downscale(img: Image.Image, scale: int) -> Image.Image:
    """`img` (cropped to a multiple of `scale`) downscaled by `scale` with PIL's antialiased bicubic: the standard
    super-resolution evaluation protocol. Returns the low-resolution image; crop the reference with
    `crop_to_multiple` to compare."""
    hr = crop_to_multiple(img, scale)
    return hr.resize((hr.width // scale, hr.height // scale), Image.Resampling.BICUBIC)


def crop_to_multiple(img: Image.Image, scale: int) -> Image.Image:
    """The top-left part of `img` whose sides are multiples of `scale`."""
    w, h = img.width - img.width % scale, img.height - img.height % scale
    return img if (w, h) == img.size else img.crop((0, 0, w, h))
