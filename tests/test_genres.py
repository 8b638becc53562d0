"""The genre vocabulary: 7 labels, display names, tolerant parsing, multi-hot round trip."""
from __future__ import annotations

import itertools

import pytest
import torch

from poster_studio import genres as G
from poster_studio.errors import InvalidArgumentError


def test_vocabulary_matches_the_data():
    assert G.GENRES == ("Action_Adventure", "Animation", "Comedy", "Documentary", "Drama", "Horror_Thriller",
                        "Romance")
    assert set(G.DISPLAY_NAMES) == set(G.GENRES) and G.NUM_GENRES == 7


@pytest.mark.parametrize("subset", [s for r in (0, 1, 2, 3, 7) for s in itertools.combinations(G.GENRES, r)][:60])
def test_encode_decode_round_trip(subset):
    v = G.encode(subset)
    assert v.shape == (7,) and v.dtype == torch.float32 and v.sum() == len(subset)
    assert G.decode(v) == list(subset)  # decode keeps model index order, as combinations do


@pytest.mark.parametrize("alias, label", [
    ("horror", "Horror_Thriller"), ("Thriller", "Horror_Thriller"), ("Horror & Thriller", "Horror_Thriller"),
    ("horror_thriller", "Horror_Thriller"), ("ACTION", "Action_Adventure"), ("adventure", "Action_Adventure"),
    ("Action & Adventure", "Action_Adventure"), (" comedy ", "Comedy"), ("romance", "Romance"),
    ("documentary", "Documentary"), ("Animation", "Animation"), ("drama", "Drama"),
])
def test_aliases(alias, label):
    assert G.parse_genre(alias) == label


@pytest.mark.parametrize("bad", ["Western", "", "sci-fi", "42", "horrorz"])
def test_unknown_genre_is_a_clear_error(bad):
    with pytest.raises(InvalidArgumentError, match="Unknown genre") as info:
        G.parse_genre(bad)
    assert "Comedy" in str(info.value)  # lists the choices


def test_decode_thresholds_per_genre():
    scores = [0.9, 0.1, 0.4, 0.5, 0.6, 0.2, 0.35]
    assert G.decode(scores) == ["Action_Adventure", "Documentary", "Drama"]
    th = [0.95, 0.05, 0.3, 0.6, 0.5, 0.5, 0.3]
    assert G.decode(scores, th) == ["Animation", "Comedy", "Drama", "Romance"]
    with pytest.raises(InvalidArgumentError):
        G.decode([0.5] * 6)


def test_split_labels_drops_unknown_and_duplicates():
    assert G.split_labels("Horror|Thriller|Sci-Fi|Comedy") == ["Horror_Thriller", "Comedy"]
    assert G.split_labels("") == []
