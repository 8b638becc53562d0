"""The genre vocabulary of the poster data: 7 labels, their display names, one tolerant parser, multi-hot encoding.

Every other module takes its genres from here.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .errors import InvalidArgumentError

# Order matters: it is the index order of every model output and multi-hot vector.
GENRES: tuple[str, ...] = (
    "Action_Adventure",
    "Animation",
    "Comedy",
    "Documentary",
    "Drama",
    "Horror_Thriller",
    "Romance",
)
DISPLAY_NAMES: dict[str, str] = {
    "Action_Adventure": "Action & Adventure",
    "Animation": "Animation",
    "Comedy": "Comedy",
    "Documentary": "Documentary",
    "Drama": "Drama",
    "Horror_Thriller": "Horror & Thriller",
    "Romance": "Romance",
}
NUM_GENRES = len(GENRES)


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


# Accept the label, the display name, and each half of a merged label ("horror", "thriller", "action" ...).
_ALIASES: dict[str, str] = {}
for _g in GENRES:
    _ALIASES[_key(_g)] = _g
    _ALIASES[_key(DISPLAY_NAMES[_g])] = _g
    for _part in _g.split("_"):
        _ALIASES[_key(_part)] = _g


def parse_genre(name: str) -> str:
    """Canonical label for a user's genre name (case and punctuation ignored); InvalidArgumentError if unknown."""
    g = _ALIASES.get(_key(str(name)))
    if g is None:
        raise InvalidArgumentError(
            f"Unknown genre {name!r}. Choose from: {', '.join(GENRES)}."
        )
    return g


def parse_genres(values) -> list[str]:
    """Canonical labels, without repeats, for a list of genre names (labels or display names; one string is one
    name); None or [] = no genre ("any genre" for the generator). Unknown names raise InvalidArgumentError."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values] if values.strip() else []
    out: list[str] = []
    for v in values:
        c = parse_genre(v)
        if c not in out:
            out.append(c)
    return out


def encode(genres: Iterable[str]) -> torch.Tensor:
    """Multi-hot float vector of length NUM_GENRES for a set of genre names."""
    v = torch.zeros(NUM_GENRES)
    for g in genres:
        v[GENRES.index(parse_genre(g))] = 1.0
    return v


def split_labels(text: str, sep: str = "|") -> list[str]:
    """Genre labels from a `A|B` cell, unknown names dropped (the Kaggle CSV has genres outside our 7)."""
    out = []
    for part in str(text).split(sep):
        part = part.strip()
        if not part:
            continue
        g = _ALIASES.get(_key(part))
        if g is not None and g not in out:
            out.append(g)
    return out
