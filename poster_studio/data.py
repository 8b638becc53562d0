"""Poster data: the labels CSV (shared format or Kaggle `MovieGenre.csv`), a torch Dataset over the
poster JPEGs, 2:3 poster-shaped transforms (torchvision.transforms.v2), genre-balanced sampling weights,
the genre-combination prior, genre-spread samples of a split, and the uint8 poster cache the GAN-style training
scripts share (`poster_cache`).
"""
from __future__ import annotations

import csv
import hashlib
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

from . import genres as G
from .errors import InvalidArgumentError
from .images import fit_image, load_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_data_dir() -> Path:
    """Poster data folder: $POSTER_STUDIO_DATA, else ../shared/data/posters beside the project."""
    env = os.environ.get("POSTER_STUDIO_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "posters"


@dataclass(frozen=True)
class PosterRecord:
    id: str
    title: str
    year: str
    genres: tuple[str, ...]
    split: str
    genres_imdb: tuple[str, ...] = ()  # finer IMDb genres (labels.csv `genres_imdb`), for about a third of rows


def _split_of(key: str, val_fraction: float = 0.1) -> str:
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def read_labels(csv_path: str | os.PathLike) -> list[PosterRecord]:
    """Rows of a labels CSV: the shared format (id,title,year,genres,split) or Kaggle's MovieGenre.csv
    (imdbId,Title,Genre with `|`; split assigned by a stable hash of the id, 10% val)."""
    path = Path(csv_path)
    if not path.is_file():
        raise InvalidArgumentError(f"Labels file not found: {path}")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        fields = set(reader.fieldnames or [])
        rows = []
        if {"id", "genres"} <= fields:
            for r in reader:
                rows.append(PosterRecord(r["id"], r.get("title", ""), r.get("year", ""),
                                         tuple(G.split_labels(r["genres"])), r.get("split") or _split_of(r["id"]),
                                         tuple(g for g in (r.get("genres_imdb") or "").split("|") if g)))
        elif {"imdbId", "Genre"} <= fields:
            for r in reader:
                title = r.get("Title", "")
                year = ""
                if title.endswith(")") and "(" in title:
                    title, _, year = title.rpartition("(")
                    title, year = title.strip(), year.rstrip(")")
                rows.append(PosterRecord(r["imdbId"], title, year, tuple(G.split_labels(r["Genre"])),
                                         _split_of(r["imdbId"])))
        else:
            raise InvalidArgumentError(
                f"{path.name}: unknown CSV layout {sorted(fields)}; expected columns id,genres[,title,year,split] "
                "or Kaggle's imdbId,Genre."
            )
    return rows


def poster_transform(size: tuple[int, int] = (330, 224), *, train: bool = False, normalize: bool = True) -> T.Compose:
    """PIL poster -> float tensor of shape (3, H, W) with size=(H, W) in the 2:3 shape (no squashing of posters)."""
    ops: list = [T.ToImage()]
    if train:
        ops += [T.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.6, 0.73), antialias=True),
                T.RandomHorizontalFlip(), T.ColorJitter(0.2, 0.2, 0.2, 0.02)]
    else:
        ops += [T.Resize(size, antialias=True)]
    ops += [T.ToDtype(torch.float32, scale=True)]
    if normalize:
        ops += [T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(ops)


def balanced_weights(targets: torch.Tensor) -> torch.Tensor:
    """Per-poster sampling weights that draw rare genres about as often as common ones: the mean inverse
    frequency of the poster's genres (targets: (N, num_genres) multi-hot)."""
    inv = 1.0 / targets.float().mean(0).clamp_min(1e-6)
    return (targets * inv).sum(1) / targets.sum(1).clamp_min(1)


def genre_combinations(records: Sequence["PosterRecord"]) -> dict[str, float]:
    """Share of each genre combination ("A|B", genres in GENRES order) among labelled posters, most common first
    (the generator draws "any genre" requests from it)."""
    counts: dict[str, int] = {}
    for r in records:
        if r.genres:
            key = "|".join(sorted(r.genres, key=G.GENRES.index))
            counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def spread_sample(n: int, data_dir: Optional[str | os.PathLike] = None, split: str = "val") -> list[Path]:
    """`n` poster files of `split` spread over the genres (round robin over each poster's first genre, by id)."""
    data = Path(data_dir) if data_dir else default_data_dir()
    by_genre: dict[str, list[Path]] = {g: [] for g in G.GENRES}
    for r in sorted(read_labels(data / "labels.csv"), key=lambda r: r.id):
        if r.split == split and r.genres and (data / "images" / f"{r.id}.jpg").exists():
            by_genre[r.genres[0]].append(data / "images" / f"{r.id}.jpg")
    out: list[Path] = []
    i = 0
    while len(out) < n and any(len(v) > i for v in by_genre.values()):
        out += [v[i] for v in by_genre.values() if len(v) > i][: n - len(out)]
        i += 1
    return out


class PosterDataset(Dataset):
    """Posters of one split: `images_dir/<id>.jpg` with labels from `labels_csv`.

    Items are (image, multi-hot target) with image transformed by `transform` (default: the PIL image).
    `limit`: a seeded random sample of that many posters (the same ones every time)."""

    def __init__(self, images_dir: str | os.PathLike, labels_csv: str | os.PathLike | None = None,
                 split: Optional[str | Sequence[str]] = None, transform: Optional[Callable] = None,
                 limit: Optional[int] = None):
        self.images_dir = Path(images_dir)
        if labels_csv is None:
            labels_csv = self.images_dir.parent / "labels.csv"
        records = read_labels(labels_csv)
        if split is not None:
            splits = {split} if isinstance(split, str) else set(split)
            records = [r for r in records if r.split in splits]
        records = [r for r in records if r.genres]
        if limit is not None and limit < len(records):
            # A seeded random sample (in file order): the CSV is grouped by genre, so its first N rows are not.
            keep = sorted(random.Random(0).sample(range(len(records)), max(0, int(limit))))
            records = [records[i] for i in keep]
        if not records:
            raise InvalidArgumentError(f"No labelled posters for split {split!r} in {labels_csv}.")
        self.records = records
        self.transform = transform
        self.targets = torch.stack([G.encode(r.genres) for r in records])

    def __len__(self) -> int:
        return len(self.records)

    def path(self, i: int) -> Path:
        return self.images_dir / f"{self.records[i].id}.jpg"

    def image(self, i: int) -> Image.Image:
        return load_image(self.path(i))

    def __getitem__(self, i: int):
        img = self.image(i)
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[i]


def poster_cache(data: str | os.PathLike, cache_dir: str | os.PathLike, split: str = "train",
                 max_images: Optional[int] = None, show: bool = True, size: tuple[int, int] = (128, 192)) -> dict:
    """All labelled posters of `split` as uint8 (N, 3, H, W) at size (W, H) (centre-fitted to 2:3) + (N, 7) multi-hot
    labels + their records, built once into cache_dir/posters_<split>_<N>_<W>x<H>.safetensors and reused, so a
    training step never decodes a JPEG. A broken JPEG is skipped, not fatal."""
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    data, cache_dir = Path(data), Path(cache_dir)
    cache_w, cache_h = size
    records = [r for r in read_labels(data / "labels.csv") if r.split == split and r.genres]
    if max_images:
        records = records[:max_images]
    path = cache_dir / f"posters_{split}_{len(records)}_{cache_w}x{cache_h}.safetensors"
    if path.is_file():
        t = load_file(str(path))
        return {"images": t["images"], "labels": t["labels"], "records": records}
    images = torch.empty(len(records), 3, cache_h, cache_w, dtype=torch.uint8)
    keep = []
    for r in tqdm(records, desc="caching posters", disable=not show, mininterval=5):
        try:
            img = fit_image(load_image(data / "images" / f"{r.id}.jpg"), (cache_w, cache_h))
        except Exception as exc:
            print(f"skip {r.id}: {exc}", file=sys.stderr)
            continue
        images[len(keep)] = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
        keep.append(r)
    images = images[: len(keep)].contiguous()
    labels = torch.stack([G.encode(r.genres) for r in keep])
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"images": images, "labels": labels}, str(tmp))
    tmp.replace(path)
    return {"images": images, "labels": labels, "records": keep}


def repair_title(title: str) -> str:
    """Undo the common mojibake of the data's titles (UTF-8 read as Latin-1 / cp1252: "cinÃ©ma" -> "cinéma");
    a title that is not such mojibake comes back unchanged."""
    for enc in ("cp1252", "latin-1"):
        try:
            return title.encode(enc).decode("utf-8")
        except UnicodeError:
            continue
    return title
