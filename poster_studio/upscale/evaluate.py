"""How good the upscaler is, by the standard super-resolution protocol on held-out posters: each val poster
(cropped to a multiple of the scale) is downscaled by the network's scale with plain antialiased bicubic
(degrade.bicubic_downscale), brought back to its size by Lanczos, by bicubic and by the network, and compared
with the original:

- PSNR on RGB in dB (8-bit outputs, `scale` pixels shaved off each border, averaged over images);
- VGG distance: LPIPS-like, `feature_distance` (relu2_1 and relu3_1 features of the shared VGG-19, each pixel's
  channel vector scaled to unit length, squared difference summed over channels, averaged over pixels, summed
  over the two layers; 0 = identical, lower is better);
- seconds per image of the upscaling itself (after one untimed warm-up).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..backbones import VGG19Features, shared_vgg19
from ..data import spread_sample
from ..errors import InvalidArgumentError
from ..images import ImageInput, load_image, to_tensor
from .degrade import bicubic_downscale, crop_to_multiple
from .service import Upscaler

FEATURE_LAYERS = ("relu2_1", "relu3_1")
METHODS = ("lanczos", "bicubic", "network")


def feature_distance(a: torch.Tensor, b: torch.Tensor, vgg: Optional[VGG19Features] = None) -> torch.Tensor:
    """LPIPS-like distance per image (N,) between batches (N, 3, H, W) in [0, 1] (see the module docstring).
    Differentiable in both inputs (the training script's perceptual term)."""
    vgg = vgg or shared_vgg19()
    feats = vgg(torch.cat([a, b]).to(vgg.device), FEATURE_LAYERS)
    total = 0.0
    for f in feats.values():
        f = F.normalize(f, dim=1)
        fx, fy = f.chunk(2)
        total = total + (fx - fy).pow(2).sum(1).mean((1, 2))
    return total


def psnr(a: torch.Tensor, b: torch.Tensor, shave: int = 0) -> float:
    """PSNR in dB of two (3, H, W) images in [0, 1], `shave` pixels left out at each border."""
    if shave:
        a, b = a[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    mse = float((a - b).pow(2).mean())
    return 10 * math.log10(1.0 / mse) if mse > 0 else float("inf")


def evaluate_upscaler(images: Optional[Sequence[ImageInput]] = None, *, upscaler: Optional[Upscaler] = None,
                      n_images: int = 100, data_dir: Optional[str | os.PathLike] = None, split: str = "val",
                      save_dir: Optional[str | os.PathLike] = None) -> dict:
    """PSNR, VGG distance and seconds per image of Lanczos, bicubic and the network (JSON-ready dict).

    `images`: files or PIL images; default `n_images` posters of `split` spread over the genres
    (data.spread_sample). `save_dir`: also save each poster's three upscalings there (not the originals)."""
    up = upscaler or Upscaler.load()
    s = up.scale
    source = split if images is None else "given images"
    if images is None:
        images = spread_sample(n_images, data_dir, split=split)
    if not images:
        raise InvalidArgumentError(f"No images to evaluate the upscaler on (split {split!r}).")
    sums = {m: {"psnr": 0.0, "vgg_distance": 0.0, "seconds": 0.0} for m in METHODS}
    vgg = shared_vgg19()
    for i, src in enumerate(images):
        hr = crop_to_multiple(load_image(src), s)
        lr = bicubic_downscale(hr, s)
        if i == 0:
            up.upscale(lr, hr.size)  # warm-up (first-call allocations), not timed
        outs = {}
        for m in METHODS:
            t0 = time.perf_counter()
            if m == "network":
                outs[m] = up.upscale(lr, hr.size)
            else:
                resample = Image.Resampling.LANCZOS if m == "lanczos" else Image.Resampling.BICUBIC
                outs[m] = lr.resize(hr.size, resample)
            sums[m]["seconds"] += time.perf_counter() - t0
        ref = to_tensor(hr)
        with torch.inference_mode():
            batch = torch.stack([to_tensor(outs[m]) for m in METHODS])
            dist = feature_distance(batch, ref[None].expand_as(batch), vgg).cpu()
        for j, m in enumerate(METHODS):
            sums[m]["psnr"] += psnr(to_tensor(outs[m]), ref, shave=s)
            sums[m]["vgg_distance"] += float(dist[j])
        if save_dir is not None:
            folder = Path(save_dir)
            folder.mkdir(parents=True, exist_ok=True)
            stem = Path(src).stem if isinstance(src, (str, os.PathLike)) else f"{i:04d}"
            for m in METHODS:
                outs[m].save(folder / f"{stem}_{m}.png")
    n = len(images)
    result = {
        "images": n, "scale": s, "source": source,
        "protocol": (f"HR cropped to a multiple of {s}, PIL bicubic downscale by {s}, upscaled back; PSNR on RGB "
                     f"(8-bit, {s}-px border shaved); VGG distance: unit-normalised relu2_1 + relu3_1 features, "
                     "squared difference (lower is better)"),
        "methods": {m: {"psnr_db": round(v["psnr"] / n, 3), "vgg_distance": round(v["vgg_distance"] / n, 4),
                        "seconds_per_image": round(v["seconds"] / n, 4)} for m, v in sums.items()},
        "network_config": {"scale": s, "channels": up.net.channels, "layers": up.net.layers},
    }
    result["psnr_gain_over_lanczos_db"] = round(result["methods"]["network"]["psnr_db"]
                                                - result["methods"]["lanczos"]["psnr_db"], 3)
    return result
