"""Poster data: tiny CSV + images made here (both CSV layouts), split selection, grayscale/CMYK -> RGB, the 2:3
transform, genre-balanced sampling weights favouring the rare genre, the genre-combination prior and genre-spread
samples; plus a look at the real data if present."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATA_DIR, needs_posters
from poster_studio import genres as G
from poster_studio.data import (PosterDataset, balanced_weights, default_data_dir, genre_combinations, poster_transform,
                                read_labels, spread_sample)
from poster_studio.errors import InvalidArgumentError
from poster_studio.images import fit_image

ROWS = [  # id, title, year, genres, split
    ("train_00001", "Alpha", "2001", "Drama", "train"),
    ("train_00002", "Beta", "2002", "Comedy|Romance", "train"),
    ("train_00003", "Gamma", "2003", "Drama|Comedy", "train"),
    ("train_00004", "Delta", "2004", "Drama", "train"),
    ("train_00005", "Epsilon", "2005", "Animation", "train"),
    ("train_00006", "Zeta", "2006", "Drama", "train"),
    ("val_00001", "Eta", "2007", "Horror_Thriller", "val"),
    ("val_00002", "Theta", "2008", "Documentary|Drama", "val"),
]


@pytest.fixture
def tiny(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, (pid, *_rest) in enumerate(ROWS):
        mode = "L" if pid == "train_00004" else ("CMYK" if pid == "train_00006" else "RGB")
        color = {"L": 128, "CMYK": (0, 100, 100, 0), "RGB": (i * 30, 100, 200)}[mode]
        Image.new(mode, (182, 268), color).save(images / f"{pid}.jpg", "JPEG")
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "year", "genres", "split"])
        w.writerows(ROWS)
    return tmp_path


def test_shared_layout_and_split_selection(tiny):
    records = read_labels(tiny / "labels.csv")
    assert len(records) == 8 and records[1].genres == ("Comedy", "Romance") and records[1].title == "Beta"
    train = PosterDataset(tiny / "images", tiny / "labels.csv", split="train")
    val = PosterDataset(tiny / "images", tiny / "labels.csv", split="val")
    both = PosterDataset(tiny / "images", split=["train", "val"])  # labels.csv beside images/ by default
    assert (len(train), len(val), len(both)) == (6, 2, 8)
    img, target = val[1]
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert torch.equal(target, G.encode(["Documentary", "Drama"]))
    with pytest.raises(InvalidArgumentError):
        PosterDataset(tiny / "images", tiny / "labels.csv", split="test")


def test_grayscale_and_cmyk_posters_become_rgb(tiny):
    ds = PosterDataset(tiny / "images", tiny / "labels.csv", split="train")
    gray = ds[3][0]
    cmyk = ds[5][0]
    assert gray.mode == "RGB" and cmyk.mode == "RGB"
    a = np.asarray(gray)
    assert np.allclose(a[..., 0], a[..., 1], atol=1) and abs(int(a.mean()) - 128) < 3


def test_poster_transform_keeps_2_to_3(tiny):
    ds = PosterDataset(tiny / "images", tiny / "labels.csv", split="train",
                       transform=poster_transform((288, 192), train=True))
    x, y = ds[0]
    assert x.shape == (3, 288, 192) and x.dtype == torch.float32 and y.shape == (7,)
    x_eval = poster_transform((330, 224), normalize=False)(ds.image(0))
    assert x_eval.shape == (3, 330, 224) and 0.0 <= float(x_eval.min()) and float(x_eval.max()) <= 1.0
    wide = Image.new("RGB", (400, 100))
    assert fit_image(wide, (120, 180)).size == (120, 180)


def test_kaggle_moviegenre_layout(tmp_path):
    with open(tmp_path / "MovieGenre.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["imdbId", "Imdb Link", "Title", "IMDB Score", "Genre", "Poster"])
        w.writerow(["114709", "http://www.imdb.com/title/tt114709", "Toy Story (1995)", "8.3",
                    "Animation|Adventure|Comedy", "https://example.invalid/a.jpg"])
        w.writerow(["113497", "http://www.imdb.com/title/tt113497", "Jumanji (1995)", "6.9",
                    "Action|Adventure|Family", "https://example.invalid/b.jpg"])
        w.writerow(["999", "", "Only Westerns (2000)", "5", "Western", ""])
    records = read_labels(tmp_path / "MovieGenre.csv")
    assert [r.id for r in records] == ["114709", "113497", "999"]
    assert records[0].title == "Toy Story" and records[0].year == "1995"
    assert records[0].genres == ("Animation", "Action_Adventure", "Comedy")
    assert records[1].genres == ("Action_Adventure",) and records[2].genres == ()
    assert {r.split for r in records} <= {"train", "val"}
    assert read_labels(tmp_path / "MovieGenre.csv")[0].split == records[0].split  # stable split
    images = tmp_path / "images"
    images.mkdir()
    for r in records:
        Image.new("RGB", (60, 90)).save(images / f"{r.id}.jpg")
    ds = PosterDataset(images, tmp_path / "MovieGenre.csv")
    assert len(ds) == 2  # the poster with no known genre is left out


def test_unknown_csv_layout_is_a_clear_error(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidArgumentError, match="unknown CSV layout"):
        read_labels(tmp_path / "x.csv")
    with pytest.raises(InvalidArgumentError, match="not found"):
        read_labels(tmp_path / "missing.csv")


def test_balanced_weights_favour_the_rare_genre(tiny):
    ds = PosterDataset(tiny / "images", tiny / "labels.csv", split="train")
    animation = G.GENRES.index("Animation")
    drama = G.GENRES.index("Drama")
    natural = ds.targets[:, animation].mean().item()
    w = balanced_weights(ds.targets)
    assert w.shape == (len(ds),) and (w > 0).all()
    assert w[4] == w.max() and w[0] == w.min()  # the only Animation poster vs a Drama-only one
    drawn = list(torch.utils.data.WeightedRandomSampler(w, 6000, generator=torch.Generator().manual_seed(0)))
    share_animation = ds.targets[drawn, animation].mean().item()
    share_drama = ds.targets[drawn, drama].mean().item()
    assert share_animation > 1.5 * natural  # 1/6 of the posters, drawn far more often
    assert share_drama < ds.targets[:, drama].mean().item()


def test_default_data_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTER_STUDIO_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("POSTER_STUDIO_DATA")
    assert default_data_dir().parts[-3:] == ("shared", "data", "posters")


@needs_posters
def test_real_data_loads():
    val = PosterDataset(DATA_DIR / "images", DATA_DIR / "labels.csv", split="val")
    assert len(val) == 1500
    img, target = val[0]
    assert img.mode == "RGB" and img.size == (182, 268) and target.sum() >= 1
    freq = val.targets.mean(0)
    assert freq[G.GENRES.index("Drama")] > freq[G.GENRES.index("Animation")]


@needs_posters
def test_spread_sample_of_the_real_data():
    files = spread_sample(14)
    assert len(files) == 14 and all(p.is_file() and p.name.startswith("val_") for p in files)
    by_id = {r.id: r for r in read_labels(DATA_DIR / "labels.csv")}
    firsts = [by_id[p.stem].genres[0] for p in files]
    assert all(firsts.count(g) == 2 for g in G.GENRES), firsts  # every genre, twice
    assert spread_sample(14) == files  # the same sample every time


def test_genre_combinations_prior(tiny):
    prior = genre_combinations(read_labels(tiny / "labels.csv"))
    # 8 labelled posters; "Drama|Comedy" is stored in GENRES order as "Comedy|Drama"
    assert prior == pytest.approx({"Drama": 3 / 8, "Comedy|Romance": 1 / 8, "Comedy|Drama": 1 / 8, "Animation": 1 / 8,
                                   "Horror_Thriller": 1 / 8, "Documentary|Drama": 1 / 8})
    assert next(iter(prior)) == "Drama"  # most common first
    assert genre_combinations([]) == {}


def test_spread_sample_round_robin(tiny):
    files = spread_sample(3, tiny, split="train")
    # first genres of the train posters, by id: Drama, Comedy, Drama, Drama, Animation, Drama
    assert [p.stem for p in files] == ["train_00005", "train_00002", "train_00001"]  # Animation, Comedy, Drama
    assert len(spread_sample(100, tiny, split="train")) == 6  # never more than there are


@pytest.mark.skipif(not (default_data_dir() / "labels.csv").exists(), reason="poster data not found")
def test_records_carry_the_finer_imdb_genres():
    recs = {r.id: r for r in read_labels(default_data_dir() / "labels.csv")}
    assert recs["train_00002"].genres_imdb == ("Action", "Comedy", "Crime")
    assert recs["train_00001"].genres_imdb == ()
