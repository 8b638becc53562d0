"""`Classifier`: the genre classification service the app, the CLI and the other capabilities use.

One forward pass per picture (`analyze`) gives the scores, the labels above their thresholds, the similar
posters and a kept feature map, from which `heatmap` draws Grad-CAM for any genre by rerunning only the head.
Arguments are checked once, in `check_inputs`; its limits are the class attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from .. import genres as G
from .. import hub
from ..checks import check_float, check_int
from ..device import default_device
from ..data import IMAGENET_MEAN, IMAGENET_STD
from ..errors import CheckpointError
from ..images import ImageInput, fit_image, image_notes, load_image, needs_fitting, to_pil, to_tensor
from .masks import apply_mask, principal_components, saliency_masks
from .model import CHECKPOINT_NAME, INDEX_TENSORS, EmbeddingIndex, PosterClassifier, fit_to_input, fold_batchnorm, \
    load_index, preprocess
from .ensemble import PosterEnsemble, load_network


_UNSET: Any = object()  # check_inputs: "argument not given" (None is a value the user can send: no picture)


@dataclass
class Analysis:
    """What one pass of the classifier found in one picture; `Classifier.heatmap` draws from it."""

    scores: dict[str, float]          # genre -> probability
    labels: list[str]                 # genres at or above their threshold
    top: str                          # the most probable genre
    similar: list[dict]               # nearest training posters: id, title, year, distance
    shown: Image.Image                # the picture as the network saw it (2:3), at its own height
    notes: list[str] = field(default_factory=list)  # what was decided for the user (animated image ...)
    feature_maps: tuple = field(default=(), repr=False)  # one (1, C, h, w) per network member, detached


class Classifier:
    """Genre classification service: predictions, Grad-CAM heatmaps and similar posters."""

    MAX_K = 50              # similar posters per request
    MAX_MASKS = 5           # principal masks per request
    MASK_GENRES = 5         # principal masks: the top genres whose saliency masks are decomposed
    MASK_DISPLAY_HEIGHT = 432
    BATCH = 32

    def __init__(self, model: PosterClassifier | PosterEnsemble, index: Optional[EmbeddingIndex] = None,
                 device: Optional[torch.device] = None):
        self.device = device or default_device()
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.index = index
        self.genres = tuple(model.genres)
        self.thresholds = list(model.thresholds)

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None) -> "Classifier":
        folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
        model = fold_batchnorm(load_network(folder).eval())  # served, never saved: BatchNorm folded for speed
        index = load_index(folder) if (folder / INDEX_TENSORS).exists() else None
        return cls(model, index)

    # -- arguments
    def check_inputs(self, *, image: Any = _UNSET, genre: Any = _UNSET, k: Any = _UNSET,
                     alpha: Any = _UNSET, count: Any = _UNSET, top: Any = _UNSET) -> dict:
        """Validated arguments (only those given; None is a missing value, except genre None = "top"):
        image -> RGB PIL, genre -> label or "top", k, alpha, count (principal masks), top (genres decomposed)."""
        out: dict = {}
        if image is not _UNSET:
            out["image"] = load_image(image)
        if genre is not _UNSET:
            out["genre"] = "top" if genre is None or str(genre).strip().lower() in ("", "top") else G.parse_genre(genre)
        if k is not _UNSET:
            out["k"] = check_int("Similar posters (k)", k, 0, self.MAX_K)
        if alpha is not _UNSET:
            out["alpha"] = check_float("Heatmap opacity", alpha, 0.0, 1.0)
        if count is not _UNSET:
            out["count"] = check_int("Principal masks", count, 1, self.MAX_MASKS)
        if top is not _UNSET:
            out["top"] = check_int("Genres for the masks", top, 2, len(self.genres))
        return out

    # -- batches (evaluation, other capabilities)
    def _input(self, images: Sequence[ImageInput]) -> torch.Tensor:
        return torch.stack([preprocess(load_image(im), self.model.image_size) for im in images]).to(self.device)

    @torch.no_grad()
    def _run(self, images: Sequence[ImageInput]) -> tuple[torch.Tensor, torch.Tensor]:
        probs, embs = [], []
        for i in range(0, len(images), self.BATCH):
            logits, emb = self.model.head_from_maps(self.model.feature_maps(self._input(images[i: i + self.BATCH])))
            probs.append(torch.sigmoid(logits).cpu())
            embs.append(F.normalize(emb, dim=1).cpu())
        if not probs:
            return torch.zeros(0, len(self.genres)), torch.zeros(0, self.model.embed_dim)
        return torch.cat(probs), torch.cat(embs)

    def predict_proba(self, images: Sequence[ImageInput]) -> np.ndarray:
        """(N, num_genres) sigmoid probabilities, columns in `genres` order."""
        return self._run(list(images))[0].numpy()

    def _labels(self, p: Sequence[float]) -> list[str]:
        return [g for g, s, t in zip(self.genres, p, self.thresholds) if s >= t]

    # -- one picture
    def predict(self, image: ImageInput) -> dict:
        """{"scores": {genre: prob}, "labels": [genres above threshold], "top": genre}."""
        p = self._run([self.check_inputs(image=image)["image"]])[0][0].tolist()
        return {"scores": {g: round(s, 4) for g, s in zip(self.genres, p)}, "labels": self._labels(p),
                "top": self.genres[int(np.argmax(p))]}

    def analyze(self, image: ImageInput, k: int = 5) -> Analysis:
        """Scores, labels, the k most similar known posters and the kept feature map, from ONE network pass."""
        a = self.check_inputs(image=image, k=k)
        img, k = a["image"], a["k"]
        if k and self.index is None:
            raise CheckpointError("This classifier checkpoint has no embeddings index: rerun train/train_classifier.py.")
        h, w = self.model.image_size
        with torch.no_grad():
            maps = self.model.feature_maps(preprocess(img, (h, w))[None].to(self.device))
            logits, emb = self.model.head_from_maps(maps)
        p = torch.sigmoid(logits[0]).cpu().tolist()
        shown, notes = img, image_notes(img)
        if needs_fitting(img, w, h):
            shown = fit_image(img, (round(img.height * w / h), img.height), "crop")
            notes.append(f"The picture is not 2:3 ({img.width}x{img.height}): its centre 2:3 part was classified.")
        return Analysis(scores={g: round(s, 4) for g, s in zip(self.genres, p)}, labels=self._labels(p),
                        top=self.genres[int(np.argmax(p))],
                        similar=self.index.nearest(F.normalize(emb, dim=1)[0], k) if k else [],
                        shown=shown, notes=notes, feature_maps=tuple(m.detach() for m in maps))

    def heatmap(self, analysis: Analysis, genre: str = "top", alpha: float = 0.5) -> tuple[str, Image.Image]:
        """(genre, Grad-CAM overlay) for `genre` ("top" = the analysis' top genre), from the kept feature maps: only
        the head reruns. An ensemble's map is its primary member's (the gradient of the ensemble's logit)."""
        a = self.check_inputs(genre=genre, alpha=alpha)
        g = analysis.top if a["genre"] == "top" else a["genre"]
        maps = list(analysis.feature_maps)
        fmap = maps[self.model.primary] = maps[self.model.primary].clone().requires_grad_(True)
        with torch.enable_grad():
            logits, _ = self.model.head_from_maps(maps)
            (grad,) = torch.autograd.grad(logits[0, self.genres.index(g)], fmap)
        cam = F.relu((grad.mean((2, 3), keepdim=True) * fmap.detach()).sum(1, keepdim=True))
        shown = analysis.shown
        cam = F.interpolate(cam, size=(shown.height, shown.width), mode="bilinear", align_corners=False)[0, 0]
        cam = (cam / cam.max() if cam.max() > 0 else cam).cpu().numpy()
        return g, heat_overlay(shown, cam, a["alpha"])

    # -- principal masks
    def _normalized_model(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD))

    def principal_masks(self, image: ImageInput, count: int = 3, top: int = MASK_GENRES) -> list[dict]:
        """The first `count` principal masks of the saliency masks of the picture's `top` genres (masks.py), each a
        dict: "image" (the mask as a heat overlay on the picture, PIL), "mask" (PIL), "variance" (share of the masks' energy),
        "loadings" ({genre: weight of its saliency mask}), "scores" ({genre: probability of the masked picture},
        highest first)."""
        a = self.check_inputs(image=image, count=count, top=top)
        img = a["image"]
        x = to_tensor(fit_to_input(img, self.model.image_size))[None].to(self.device)
        with torch.no_grad():
            p = torch.sigmoid(self._normalized_model(x))[0]
        idx = torch.argsort(p, descending=True)[: a["top"]].tolist()
        comps, variance, loadings = principal_components(saliency_masks(self._normalized_model, x, idx), a["count"])
        h = min(self.MASK_DISPLAY_HEIGHT, max(img.height, self.model.image_size[0]))
        hh, ww = self.model.image_size
        shown = fit_to_input(img, (h, round(h * ww / hh)))
        out = []
        for k in range(len(comps)):
            with torch.no_grad():
                q = torch.sigmoid(self._normalized_model(apply_mask(x, comps[k])))[0].cpu().tolist()
            order = sorted(range(len(q)), key=lambda i: -q[i])
            mask = comps[k].cpu()
            big = F.interpolate(mask[None, None], size=(shown.height, shown.width), mode="bilinear",
                                align_corners=False)[0, 0].clamp(0, 1).numpy()
            out.append({"image": heat_overlay(shown, big, 0.5), "mask": to_pil(mask[None].expand(3, -1, -1)),
                        "variance": round(float(variance[k]), 4),
                        "loadings": {self.genres[g]: round(float(loadings[j, k]), 4) for j, g in enumerate(idx)},
                        "scores": {self.genres[i]: round(q[i], 4) for i in order}})
        return out


def heat_overlay(picture: Image.Image, cam: np.ndarray, alpha: float) -> Image.Image:
    """`cam` (H, W) in [0, 1], same size as the picture, in the jet colour map over the picture (Grad-CAM's look)."""
    heat = matplotlib.colormaps["jet"](cam)[..., :3]
    out = (1 - alpha) * np.asarray(picture, dtype=np.float32) / 255.0 + alpha * heat
    return Image.fromarray((out * 255).clip(0, 255).astype(np.uint8))
