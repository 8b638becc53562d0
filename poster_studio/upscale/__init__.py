"""Upscale: learned super-resolution for posters (issue 12), e.g. a ~200x300 poster to 400x600.

- `Upscaler` (service.py): `load()`, `check_inputs()` and its limits, `upscale(image, size)`.
- `PosterUpscaler` (model.py): the compact SR network (conv + PReLU, PixelShuffle, residual over bicubic).
- `Degradation`, `bicubic_downscale` (degrade.py): training pairs, and the evaluation protocol's downscale.
- `evaluate_upscaler`, `psnr`, `feature_distance` (evaluate.py); `add_cli` (cli.py: upscale, evaluate-upscaler).
Trained by train/train_upscaler.py (checkpoints/upscaler).
"""
from .degrade import Degradation, bicubic_downscale
from .model import PosterUpscaler
from .service import CHECKPOINT_NAME, Upscaler

__all__ = ["CHECKPOINT_NAME", "Degradation", "PosterUpscaler", "Upscaler", "bicubic_downscale"]
