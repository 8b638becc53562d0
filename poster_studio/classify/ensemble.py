"""`PosterEnsemble`: several `PosterClassifier`s (e.g. Lite0 at 288x192 and Lite2 at 384x256) as one network.

It takes one input at `image_size` (the largest member's) and gives each member that input resized by the member's
own scale; the logits are the weighted mean of the members' logits. The embedding (similar posters, the novelty check
of generated posters) is `embedding="primary"`: the primary member's, so that an ensemble whose primary member is the
classifier shipped before keeps its embedding space (its index, and the thresholds calibrated on it, stay valid); or
`"concat"`: the members' L2-normalised embeddings concatenated, divided by sqrt(members) (unit length).
Grad-CAM, the dreams and the generator's classifier guidance use the `primary` member (`primary_network`; the
stronger one on val, stated in the model card); the scores shown, the thresholds and every judge use the blend. It has the
interface the services use: `feature_maps`, `head_from_maps`, `forward`, `block_output`, `image_size`, `genres`,
`thresholds`, `embed_dim`. Saved as one config.json (the members' configs) + one model.safetensors.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import genres as G
from .. import hub
from .model import PosterClassifier


def member_config(model: PosterClassifier) -> dict:
    """The constructor arguments of a member (what the ensemble's config.json stores)."""
    return {"image_size": list(model.image_size), "embed_dim": model.embed.out_features,
            "dropout": float(model.dropout.p), "split_block": model.split_block, "variant": model.variant}


EMBEDDINGS = ("primary", "concat")


class PosterEnsemble(nn.Module, hub.HubMixin):
    """Weighted mean of the members' logits; see the module docstring."""

    def __init__(self, members: Sequence[dict], weights: Optional[Sequence[float]] = None, primary: int = 0,
                 genres: Sequence[str] = G.GENRES, thresholds: Optional[Sequence[float]] = None,
                 embedding: str = "primary"):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.genres = tuple(genres)
        self.members = nn.ModuleList(PosterClassifier(genres=self.genres, **dict(m)) for m in members)
        w = [1.0 / len(members)] * len(members) if weights is None else [float(v) for v in weights]
        if len(w) != len(members):
            raise ValueError(f"{len(w)} weights for {len(members)} members")
        self.weights = w
        self.primary = int(primary)
        if not 0 <= self.primary < len(members):
            raise ValueError(f"primary member {primary} of {len(members)}")
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {embedding!r}")
        self.embedding = embedding
        self.image_size = max((m.image_size for m in self.members), key=lambda s: s[0] * s[1])
        self.thresholds = [float(t) for t in (thresholds if thresholds is not None else [0.5] * len(self.genres))]
        self.embed_dim = (self.members[self.primary].embed.out_features if embedding == "primary"
                          else sum(m.embed.out_features for m in self.members))

    @classmethod
    def of(cls, models: Sequence[PosterClassifier], weights: Optional[Sequence[float]] = None, primary: int = 0,
           thresholds: Optional[Sequence[float]] = None, embedding: str = "primary") -> "PosterEnsemble":
        """An ensemble carrying these trained members' weights."""
        out = cls([member_config(m) for m in models], weights=weights, primary=primary, genres=models[0].genres,
                  thresholds=thresholds, embedding=embedding)
        for mine, theirs in zip(out.members, models):
            mine.load_state_dict(theirs.state_dict())
        return out

    def member_input(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """x resized by member k's scale (its own image_size when x is at the ensemble's)."""
        h0, w0 = self.image_size
        mh, mw = self.members[k].image_size
        size = (mh, mw) if tuple(x.shape[-2:]) == (h0, w0) else \
            (max(32, round(x.shape[-2] * mh / h0)), max(32, round(x.shape[-1] * mw / w0)))
        if tuple(x.shape[-2:]) == size:
            return x
        return F.interpolate(x, size=size, mode="bilinear", antialias=size[0] < x.shape[-2], align_corners=False)

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(m.trunk(m.stem(self.member_input(x, k))) for k, m in enumerate(self.members))

    def head_from_maps(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The members' feature maps -> (weighted mean logits, the embedding: see the module docstring)."""
        outs = [m.head_from_map(f) for m, f in zip(self.members, maps)]
        logits = sum(w * lg for w, (lg, _) in zip(self.weights, outs))
        if self.embedding == "primary":
            return logits, outs[self.primary][1]
        emb = torch.cat([F.normalize(e, dim=1) for _, e in outs], dim=1) / len(outs) ** 0.5
        return logits, emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_from_maps(self.feature_maps(x))[0]

    @property
    def primary_network(self) -> PosterClassifier:
        """The primary member: what the uses that run gradients through the classifier many times per picture
        (genre and deep dreams, the generator's classifier guidance) differentiate, at its own input size; the
        other members would multiply their cost for a blend they were not tuned for."""
        return self.members[self.primary]

    def block_output(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """The primary member's stage `block` output (deep dream)."""
        return self.members[self.primary].block_output(self.member_input(x, self.primary), block)


def load_network(folder) -> PosterClassifier | PosterEnsemble:
    """The network of a classifier checkpoint folder: an ensemble where its config.json lists members, else one
    PosterClassifier (every checkpoint before 2026-12-03)."""
    config = Path(folder) / "config.json"
    try:
        members = "members" in json.loads(config.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        members = False  # load_model names the missing or corrupt file
    return hub.load_model(PosterEnsemble if members else PosterClassifier, "classifier", directory=folder)
