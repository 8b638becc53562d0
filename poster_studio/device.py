"""Where the tensors run, chosen in one place: CUDA when it is there, else the CPU ($POSTER_STUDIO_DEVICE
overrides, e.g. `cpu` on a GPU machine). Services move their networks there once; training scripts too."""
from __future__ import annotations

import os

import torch

DEVICE_ENV = "POSTER_STUDIO_DEVICE"


def default_device() -> torch.device:
    """$POSTER_STUDIO_DEVICE if set, else cuda when available, else cpu."""
    name = os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
