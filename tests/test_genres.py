"""The genre vocabulary: 7 labels, display names, tolerant parsing (one name and lists), multi-hot encoding."""
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
def test_encode_marks_exactly_the_genres(subset):
    v = G.encode(subset)
    assert v.shape == (7,) and v.dtype == torch.float32 and v.sum() == len(subset)
    assert [g for g, x in zip(G.GENRES, v.tolist()) if x == 1.0] == list(subset)
    # display names encode to the same vector
    assert torch.equal(G.encode([G.DISPLAY_NAMES[g] for g in subset]), v)


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


@pytest.mark.parametrize("values, expected", [
    (None, []), ([], []), ("", []), ("  ", []), ("Comedy", ["Comedy"]), ("Horror & Thriller", ["Horror_Thriller"]),
    (["horror", "Horror & Thriller", "Thriller", "Horror_Thriller"], ["Horror_Thriller"]),  # one genre, no repeats
    (["Romance", "comedy"], ["Romance", "Comedy"]),  # order kept
    (("Action & Adventure", "Drama"), ["Action_Adventure", "Drama"]),
])
def test_parse_genres(values, expected):
    assert G.parse_genres(values) == expected


@pytest.mark.parametrize("values", [["Comedy", "Western"], ["Comedy", ""], "Western"])
def test_parse_genres_refuses_any_unknown_name(values):
    with pytest.raises(InvalidArgumentError, match="Unknown genre"):
        G.parse_genres(values)


def test_split_labels_drops_unknown_and_duplicates():
    assert G.split_labels("Horror|Thriller|Sci-Fi|Comedy") == ["Horror_Thriller", "Comedy"]
    assert G.split_labels("") == []
