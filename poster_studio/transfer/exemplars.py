"""Each genre's exemplar posters: choosing them from the classifier's embeddings index, and the bank of their
blended style statistics that ships in checkpoints/transfer/ (exemplars.safetensors + exemplars.json; no images).

Selection methods (over the training posters of the classifier's index):
- "seed": the poster the classifier is most sure of for the genre, plus its k nearest neighbours in the
  128-d embedding (the seed study's way); equal blend weights.
- "topk": the k+1 posters with the highest score for the genre; equal weights.
- "clusters": k-means (k+1 centres) over the embeddings of the genre's most confident posters; the poster
  nearest each centre, weighted by its cluster's size.
(train/build_exemplars.py adds "validated": candidates judged by the classifier on restyled pictures.)
Score: "prob" (sigmoid probability of the genre) or "margin" (probability minus the best other genre's, which
favours posters whose top-1 genre is the target). Given the posters' labels, posters of the genre alone come first
where there are enough of them (single_label_first).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import torch

from .. import genres as G
from .. import hub
from ..errors import CheckpointError, InvalidArgumentError
from .style import ENCODER_LAYER, STAT_LAYERS, GenreStyle

EXEMPLAR_TENSORS = "exemplars.safetensors"
EXEMPLAR_META = "exemplars.json"
METHODS = ("seed", "topk", "clusters")
SCORES = ("prob", "margin")


def genre_scores(probs: torch.Tensor, genre: str, score: str = "prob") -> torch.Tensor:
    gi = G.GENRES.index(G.parse_genre(genre))
    p = probs.float()
    if score == "prob":
        return p[:, gi]
    if score == "margin":
        others = torch.cat([p[:, :gi], p[:, gi + 1:]], 1)
        return p[:, gi] - others.max(1).values
    raise InvalidArgumentError(f"Unknown exemplar score {score!r}; choose from {SCORES}.")


def single_label_first(scores: torch.Tensor, ids, labels: Optional[dict], genre: str, need: int) -> torch.Tensor:
    """`scores` reordered so that the posters labelled with `genre` alone come before every other poster, when at
    least `need` of them are there (else `scores` as they are): an exemplar of a genre should not also be another
    genre (Norbit, Comedy + Romance, as Romance's). `labels`: poster id -> its genres (None: no preference)."""
    if not labels:
        return scores
    g = G.parse_genre(genre)
    alone = torch.tensor([tuple(labels.get(i, ())) == (g,) for i in ids], dtype=torch.bool)
    if int(alone.sum()) < max(1, need):
        return scores
    s = scores.float()
    return torch.where(alone, s, s - (float(s.max() - s.min()) + 1.0))


def _kmeans(x: torch.Tensor, k: int, iters: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain k-means with k-means++ seeding; returns (centres (k, D), assignment (N,))."""
    g = torch.Generator().manual_seed(seed)
    centres = [x[torch.randint(len(x), (1,), generator=g)].squeeze(0)]
    for _ in range(1, k):
        d = torch.cdist(x, torch.stack(centres)).min(1).values ** 2
        centres.append(x[torch.multinomial(d / d.sum() if d.sum() > 0 else torch.ones_like(d), 1, generator=g)].squeeze(0))
    c = torch.stack(centres)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        new = torch.stack([x[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)])
        if torch.allclose(new, c):
            break
        c = new
    return c, torch.cdist(x, c).argmin(1)


def select_exemplars(embeddings: torch.Tensor, probs: torch.Tensor, genre: str, *, method: str = "seed",
                     k: int = 4, score: str = "prob", pool: int = 200, seed: int = 0, ids=None,
                     labels: Optional[dict] = None) -> tuple[list[int], list[float]]:
    """Row indices of the genre's exemplars and their blend weights (summing to 1). With `ids` (the rows' poster
    ids) and `labels` (id -> genres), posters of the genre alone are preferred (single_label_first)."""
    if method not in METHODS:
        raise InvalidArgumentError(f"Unknown exemplar method {method!r}; choose from {METHODS}.")
    n = len(embeddings)
    if n == 0:
        raise InvalidArgumentError("The embeddings index is empty.")
    k = max(0, min(int(k), n - 1))
    s = genre_scores(probs, genre, score)
    if labels and ids is not None:
        s = single_label_first(s, ids, labels, genre, pool if method == "clusters" else k + 1)
    emb = embeddings.float()
    if method == "seed":
        top = int(s.argmax())
        d = torch.cdist(emb[top: top + 1], emb).view(-1)
        d[top] = float("inf")
        rows = [top] + torch.argsort(d)[:k].tolist()
        return rows, [1.0 / len(rows)] * len(rows)
    if method == "topk":
        rows = torch.argsort(s, descending=True)[: k + 1].tolist()
        return rows, [1.0 / len(rows)] * len(rows)
    # clusters
    cand = torch.argsort(s, descending=True)[: max(pool, k + 1)]
    x = emb[cand]
    centres, assign = _kmeans(x, k + 1, seed=seed)
    rows, weights = [], []
    for j in range(k + 1):
        members = (assign == j).nonzero().view(-1)
        if len(members) == 0:
            continue
        nearest = members[torch.cdist(centres[j: j + 1], x[members]).view(-1).argmin()]
        rows.append(int(cand[nearest]))
        weights.append(float(len(members)))
    total = sum(weights)
    return rows, [w / total for w in weights]


class ExemplarBank:
    """Per-genre GenreStyle statistics, saved as exemplars.safetensors + exemplars.json."""

    def __init__(self, styles: dict[str, GenreStyle], info: Optional[dict] = None):
        self.styles = styles
        self.info = info or {}

    def style(self, genre: str) -> GenreStyle:
        g = G.parse_genre(genre)
        if g not in self.styles:
            raise CheckpointError(f"The transfer checkpoint has no exemplars for {g}: rerun train/build_exemplars.py.")
        return self.styles[g]

    def files(self) -> dict[str, Callable[[Path], None]]:
        """exemplars.safetensors + exemplars.json as writers for hub.save_checkpoint / hub.add_files."""
        from safetensors.torch import save_file

        tensors, meta = {}, {"info": self.info, "genres": {}}
        for g, s in self.styles.items():
            for l, v in s.mean.items():
                tensors[f"{g}/mean/{l}"] = v.float().contiguous()
            for l, v in s.std.items():
                tensors[f"{g}/std/{l}"] = v.float().contiguous()
            for l, v in s.gram.items():
                tensors[f"{g}/gram/{l}"] = v.to(torch.bfloat16).contiguous()  # Gram range needs bf16, not fp16
            if s.member_mean is not None:
                tensors[f"{g}/member_mean"] = s.member_mean.float().contiguous()
                tensors[f"{g}/member_std"] = s.member_std.float().contiguous()
            if s.pixel_mean is not None:
                tensors[f"{g}/pixel_mean"] = s.pixel_mean.float().contiguous()
                tensors[f"{g}/pixel_cov"] = s.pixel_cov.float().contiguous()
            meta["genres"][g] = s.exemplars
        return {EXEMPLAR_TENSORS: lambda p: save_file(tensors, str(p)),
                EXEMPLAR_META: lambda p: p.write_text(json.dumps(meta, indent=1))}

    @classmethod
    def load(cls, folder: str | Path) -> "ExemplarBank":
        fix = "run train/build_exemplars.py"
        t, meta = hub.load_side_files(folder, EXEMPLAR_TENSORS, EXEMPLAR_META, fix)
        try:
            styles = {}
            for g, ex in meta["genres"].items():
                pick = lambda kind: {k.split("/")[2]: v.float() for k, v in t.items()  # noqa: E731
                                     if k.startswith(f"{g}/{kind}/")}
                st = GenreStyle(g, ex, pick("mean"), pick("std"), pick("gram"),
                                t.get(f"{g}/member_mean"), t.get(f"{g}/member_std"),
                                t.get(f"{g}/pixel_mean"), t.get(f"{g}/pixel_cov"))
                if set(st.mean) != set(STAT_LAYERS) or st.mean[ENCODER_LAYER].shape != (512,):
                    raise ValueError(f"statistics of {g} are incomplete")
                styles[g] = st
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"Corrupt exemplar statistics in {folder} ({exc}): {fix}.") from None
        return cls(styles, meta.get("info", {}))
