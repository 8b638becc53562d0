"""Choosing each genre's exemplar posters from the classifier's embeddings index (no images needed).

Methods (all over the training posters of `classifier.load_index()`):
- "seed": the poster the classifier is most sure of for the genre, plus its k nearest neighbours in the
  128-d embedding (the seed study's way); equal blend weights.
- "topk": the k+1 posters with the highest score for the genre; equal weights.
- "clusters": k-means (k+1 centres) over the embeddings of the genre's most confident posters; the poster
  nearest each centre, weighted by its cluster's size.
Score: "prob" (sigmoid probability of the genre) or "margin" (probability minus the best other genre's, which
favours posters whose top-1 genre is the target).
"""
from __future__ import annotations

from typing import Sequence

import torch

from . import genres as G
from .errors import InvalidArgumentError

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
                     k: int = 4, score: str = "prob", pool: int = 200, seed: int = 0) -> tuple[list[int], list[float]]:
    """Row indices of the genre's exemplars and their blend weights (summing to 1)."""
    if method not in METHODS:
        raise InvalidArgumentError(f"Unknown exemplar method {method!r}; choose from {METHODS}.")
    n = len(embeddings)
    if n == 0:
        raise InvalidArgumentError("The embeddings index is empty.")
    k = max(0, min(int(k), n - 1))
    s = genre_scores(probs, genre, score)
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


def select_all(embeddings: torch.Tensor, probs: torch.Tensor, genres: Sequence[str] = G.GENRES, **kw) -> dict:
    return {G.parse_genre(g): select_exemplars(embeddings, probs, g, **kw) for g in genres}
