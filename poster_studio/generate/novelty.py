"""Is a generated poster new? Its nearest training poster in the project classifier's embedding index
(checkpoints/classifier: L2-normalised 128-d embeddings of the training posters, no images).

The threshold is a statistic of real posters: a low percentile (`PERCENTILE`) of the distances from val posters to
their nearest training poster. A generated poster closer to a training poster than that is closer than real posters
of the same source typically are to each other: the generation service resamples it. `calibrate` measures the
threshold (train/train_latent.py --stage novelty), and the latent engine's config carries it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

PERCENTILE = 2.0


class NoveltyCheck:
    """Nearest-training-poster distances of pictures, and which of them fall under `threshold`."""

    def __init__(self, classifier, threshold: float):
        if classifier.index is None:
            raise ValueError("The novelty check needs a classifier checkpoint with its embeddings index.")
        self.classifier, self.threshold = classifier, float(threshold)

    def distances(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N,) Euclidean distance from each picture's embedding to its nearest training poster."""
        if not images:
            return np.zeros(0)
        _, emb = self.classifier._run(list(images))
        return torch.cdist(emb.float(), self.classifier.index.embeddings.float()).min(1).values.numpy()

    def too_close(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.distances(images) < self.threshold


def calibrate(classifier, val_images: Sequence[Image.Image], percentile: float = PERCENTILE) -> dict:
    """The threshold from real val posters (never in the index): their nearest-training-poster distances."""
    d = NoveltyCheck(classifier, 0.0).distances(val_images)
    return {"threshold": float(np.percentile(d, percentile)), "percentile": percentile, "n_val": int(len(d)),
            "val_median": float(np.median(d))}
