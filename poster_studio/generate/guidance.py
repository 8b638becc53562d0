"""Classifier guidance for the latent engine (Generate v3, issue 20 step 4): a few Adam steps that move the prior's
latents toward the requested genres under the project classifier, through the decoder, the recipe of the Dream
tab's genre dreams (random views: rotation, scale, jitter, crops; several genres: the soft minimum of their
scores). An anchor keeps each latent near the prior's sample, where the prior puts real posters.

The score of genre g is its log-softmax over the classifier's genre logits (it must beat the other genres, which is
what "the poster reads as g" means to an argmax judge). The classifier guides, so it is no longer an independent
judge of guided posters: the VGG-19 probe, never in the loop, is (train_latent.py --stage evaluate).

Guidance pulls a poster toward what the classifier finds most typical of a genre, which is also where the training
posters of that genre sit in its embedding space: unchecked, it lands one guided poster in seven closer to a
training poster than the novelty check allows (novelty.py). With `repel` (the novelty threshold), a hinge pushes
the poster's full-view embedding away from its nearest training poster while it is within REPEL_MARGIN x threshold,
so guided posters stay new without redraws.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from ..data import IMAGENET_MEAN, IMAGENET_STD
from ..dream.render import random_view


REPEL_MARGIN = 1.25  # the hinge acts inside this multiple of the novelty threshold
REPEL_WEIGHT = 20.0


class ClassifierGuidance:
    """guide(decoder, latents, c) -> latents. `classifier`: a classify.Classifier (its network at its input size).
    `lr` is Adam's step on the latent (which has unit variance per channel on average), `anchor` the weight of
    ||z - z_prior||^2 per element, `views` random views per step; `repel` the novelty threshold (None: no repulsion;
    needs the classifier's embeddings index)."""

    def __init__(self, classifier, lr: float = 0.05, anchor: float = 0.5, views: int = 2,
                 repel: Optional[float] = None):
        self.classifier, self.lr, self.anchor, self.views = classifier, float(lr), float(anchor), int(views)
        index = getattr(classifier, "index", None)
        self.repel = None if repel is None or index is None else float(repel) * REPEL_MARGIN
        self._bank = None if self.repel is None else index.embeddings.float()

    def nearest_distance(self, images: torch.Tensor) -> torch.Tensor:
        """(N,) distance from each poster's full-view embedding (L2-normalised) to its nearest training poster."""
        x = F.interpolate(images, size=tuple(self.model.image_size), mode="bilinear", antialias=True,
                          align_corners=False)
        _, emb = self.model.head_from_maps(self.model.feature_maps(TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)))
        return torch.cdist(F.normalize(emb, dim=1), self._bank).min(1).values

    @property
    def model(self) -> torch.nn.Module:
        return self.classifier.model.primary_network  # an ensemble guides through its primary member

    def scores(self, images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [0, 1], c (N, G) multi-hot -> (N,) soft minimum over each poster's genres of the
        log-softmax of the classifier's logits (a poster without genres scores 0)."""
        logits = self.model(TF.normalize(images, IMAGENET_MEAN, IMAGENET_STD))
        logp = F.log_softmax(logits, dim=1)
        masked = torch.where(c > 0, -logp, torch.full_like(logp, -1e4))
        return torch.where(c.sum(1) > 0, -torch.logsumexp(masked, dim=1), torch.zeros_like(logp[:, 0]))

    def __call__(self, decoder: Callable[[torch.Tensor], torch.Tensor], latents: torch.Tensor, c: torch.Tensor,
                 steps: int, generator: torch.Generator,
                 callback: Optional[Callable[[int, int, torch.Tensor], None]] = None,
                 cancel: Optional[threading.Event] = None) -> torch.Tensor:
        """`steps` Adam steps on the latents (N, C, h, w); the same generator gives the same views, so the same
        arguments give the same posters. callback(done, steps, latents) after each step; `cancel` stops early."""
        if steps <= 0:
            return latents
        anchor = latents.detach()
        z = anchor.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=self.lr)
        size = tuple(self.model.image_size)
        was = [p.requires_grad for p in self.model.parameters()]
        self.model.requires_grad_(False)
        try:
            for step in range(steps):
                if cancel is not None and cancel.is_set():
                    break
                with torch.enable_grad():
                    x = decoder(z).clamp(0, 1)
                    views = [random_view(x, size, generator) for _ in range(self.views)]
                    score = torch.stack([self.scores(v, c) for v in views]).mean(0)
                    loss = -score.sum() + self.anchor * (z - anchor).pow(2).mean((1, 2, 3)).sum()
                    if self.repel is not None:
                        loss = loss + REPEL_WEIGHT * F.relu(self.repel - self.nearest_distance(x)).sum()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                opt.step()
                if callback is not None:
                    callback(step + 1, steps, z.detach())
        finally:
            for p, r in zip(self.model.parameters(), was):
                p.requires_grad_(r)
        return z.detach()
