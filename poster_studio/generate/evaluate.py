"""How good the generator is: generated-poster metrics on a fixed pretrained feature extractor (there are no Inception weights here).

Features: EfficientNet-Lite0 (ImageNet, `backbones.efficientnet_lite0`) global-average-pooled 1280-d
features of the image resized to 128x192 (W x H, the poster shape; square or 1:2 outputs are stretched
to it, as the app serves them). On these features:
- KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel, mean (and std) over
  random subsets. Reliable with ~100 images per genre; reported raw (x1000 is the usual display).
- FID: Frechet distance of Gaussian fits. With 100 images and 1280 dims the covariance is rank-deficient
  and FID is strongly biased upwards; use it only to compare runs evaluated with the same n.
- Diversity: mean pairwise Euclidean feature distance of the generated images of a genre, divided by the
  same figure for the real posters of that genre (mode collapse -> ratio well below 1).
- Conditional accuracy: share of posters generated for genre G whose top-1 genre by the project's
  classifier (`classify.Classifier`) is G; skipped with a note when no classifier checkpoint exists.
The same KID / FID / diversity are also computed in a second feature space, VGG-19 (channel mean and std of
relu4_1 and relu5_1, `classify.probe.vgg_features`, standardised by the real posters: keys vgg_*), and the conditional accuracy under a second judge,
the VGG-19 linear genre probe (`classify.probe.GenreProbe`: probe_cond_acc). The v2 generator's discriminator
sees EfficientNet-Lite0 features, so the EfficientNet figures flatter it; the VGG-19 ones do not.
"""
from __future__ import annotations

import functools
import hashlib
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from torchvision.transforms.v2 import functional as TF

from .. import genres as G
from ..backbones import efficientnet_lite0
from ..data import IMAGENET_MEAN, IMAGENET_STD, read_labels
from ..errors import InvalidArgumentError
from ..images import load_image, to_tensor
from .service import PosterGenerator

FEATURE_SIZE = (128, 192)  # (W, H)
CACHE_DIR = Path(__file__).resolve().parents[2] / "cache" / "gan_metrics"


@functools.lru_cache(maxsize=1)
def _extractor() -> torch.nn.Module:
    model = efficientnet_lite0(pretrained=True)
    model.reset_classifier(0)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def effnet_features(images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
    """(N, 1280) float64 pooled EfficientNet-Lite0 features of RGB PIL images."""
    model = _extractor()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.stack([to_tensor(im.resize(FEATURE_SIZE, Image.Resampling.BICUBIC))
                         for im in images[i: i + batch_size]])
        out.append(model(TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1280))


def _vgg_features(images: Sequence[Image.Image]) -> np.ndarray:
    from ..classify.probe import vgg_features  # the second judge's feature space

    return vgg_features(list(images)).astype(np.float64)


# feature space -> (extractor, prefix of its keys in the result, standardise by the real posters' statistics).
# VGG-19 channel statistics span orders of magnitude (Caffe scale), which would blow up KID's cubic kernel, so that
# space is standardised per dimension by the real posters of the split (the same transform for every model).
SPACES = {"effnet": (effnet_features, "", False), "vgg19": (_vgg_features, "vgg_", True)}


def _vgg_layout_features(images: Sequence[Image.Image]) -> np.ndarray:
    from ..classify.probe import vgg_layout_features

    return vgg_layout_features(list(images)).astype(np.float64)


FEATURES = {**{k: v[0] for k, v in SPACES.items()}, "vgg19_layout": _vgg_layout_features}  # real_features' spaces


def kid(f_gen: np.ndarray, f_real: np.ndarray, subsets: int = 50, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (on our features): mean and std of unbiased MMD^2 over random subsets."""
    n = min(len(f_gen), len(f_real), subset_size)
    if n < 2:
        return float("nan"), float("nan")
    d = f_gen.shape[1]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = f_gen[rng.choice(len(f_gen), n, replace=False)]
        y = f_real[rng.choice(len(f_real), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2 * kxy.mean())
        vals.append(mmd)
    return float(np.mean(vals)), float(np.std(vals))


def fid(f_gen: np.ndarray, f_real: np.ndarray) -> float:
    """Frechet distance between Gaussian fits of two feature sets, computed exactly without a d x d matrix square
    root: with centred samples X1 (n1 x d), X2 (n2 x d), trace sqrtm(S1 S2) is the nuclear norm of X1 X2^T divided
    by sqrt((n1-1)(n2-1)) (the nonzero eigenvalues of S1 S2 are the squared singular values of that n1 x n2 matrix)."""
    n1, n2 = len(f_gen), len(f_real)
    if n1 < 2 or n2 < 2:
        return float("nan")
    x1, x2 = f_gen - f_gen.mean(0), f_real - f_real.mean(0)
    cross = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    tr1, tr2 = (x1 ** 2).sum() / (n1 - 1), (x2 ** 2).sum() / (n2 - 1)
    return float(((f_gen.mean(0) - f_real.mean(0)) ** 2).sum() + tr1 + tr2 - 2 * cross)


def mean_pairwise_distance(f: np.ndarray, max_items: int = 2000, seed: int = 0) -> float:
    """Mean Euclidean distance over all pairs (a random subset of `max_items` when larger)."""
    if len(f) < 2:
        return float("nan")
    if len(f) > max_items:
        f = f[np.random.default_rng(seed).choice(len(f), max_items, replace=False)]
    sq = (f ** 2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0.0)
    n = len(f)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean())


# ----------------------------------------------------------------------------------------------- evaluation
def real_features(labels_csv: str | Path, split: Optional[str], images_root: Optional[str | Path] = None,
                  cache_dir: Path = CACHE_DIR, space: str = "effnet") -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) in `space` and multi-hot labels (N, 7) of the real posters of `split`, cached on disk."""
    from safetensors.numpy import load_file, save_file

    labels_csv = Path(labels_csv)
    root = Path(images_root) if images_root else labels_csv.parent / "images"
    records = [r for r in read_labels(labels_csv) if r.genres and (split is None or r.split == split)]
    if not records:
        raise InvalidArgumentError(f"No labelled posters for split {split!r} in {labels_csv}.")
    key = hashlib.sha1(("|".join(r.id for r in records) + str(root.resolve()) + str(FEATURE_SIZE)).encode()).hexdigest()[:12]
    path = cache_dir / f"real_{split}_{len(records)}_{key}{'' if space == 'effnet' else '_' + space}.safetensors"
    if path.is_file():
        t = load_file(str(path))
        return t["features"], t["labels"]
    feats, labs = [], []
    for i in range(0, len(records), 64):
        chunk = records[i: i + 64]
        imgs, ok = [], []
        for r in chunk:
            try:
                imgs.append(load_image(root / f"{r.id}.jpg"))
                ok.append(r)
            except Exception:
                continue
        feats.append(FEATURES[space](imgs))
        labs.append(np.stack([G.encode(r.genres).numpy() for r in ok]))
    f, l = np.concatenate(feats), np.concatenate(labs).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({"features": f, "labels": l}, str(tmp))
    tmp.replace(path)
    return f, l


def _load_generated(images_dir: Path, genre: str, limit: Optional[int]) -> list[Image.Image]:
    folder = images_dir / genre
    files = sorted(p for p in folder.glob("*.png")) if folder.is_dir() else []
    if limit:
        files = files[:limit]
    return [load_image(p) for p in files]


def _judges() -> dict:
    """result key -> loader of a genre judge with predict_proba (sibling capabilities, used only as judges)."""
    from ..classify import Classifier
    from ..classify.probe import GenreProbe

    return {"cond_acc": Classifier.load, "probe_cond_acc": GenreProbe.load}


def _judge_probs(key: str, images: list[Image.Image], state: dict) -> Optional[np.ndarray]:
    if key not in state:
        try:
            state[key] = _judges()[key]()
        except Exception as exc:  # missing/corrupt checkpoint
            state[key] = None
            state.setdefault("notes", []).append(
                f"{key} skipped: no usable judge ({type(exc).__name__}: {str(exc)[:160]})")
    return None if state[key] is None else state[key].predict_proba(images)


def vgg_copy_check(images: Sequence[Image.Image], labels_csv: str | Path, images_root: Optional[str | Path] = None,
                   percentile: float = 2.0, space: str = "vgg19_layout") -> dict:
    """The novelty check again, under the network that guides nothing: each picture's nearest training poster in
    VGG-19 space (`space`: "vgg19_layout", relu5_1 pooled to a 3x2 grid, what is where; or "vgg19", the vgg_*
    channel statistics, which hold no layout; standardised by the training posters), against the threshold that real
    posters set: the `percentile` of the val posters' nearest-training-poster distances (generate/novelty.py takes
    the same percentile in the classifier's embedding, which also guides the tab's posters). A picture under it is
    closer to a training poster than real posters of the same source typically are: a likely copy."""
    if not images:
        raise InvalidArgumentError("vgg_copy_check needs at least one picture.")
    f_train, _ = real_features(labels_csv, "train", images_root, space=space)
    f_val, _ = real_features(labels_csv, "val", images_root, space=space)
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    train = torch.from_numpy((f_train - mu) / sd)

    def nearest(f: np.ndarray) -> np.ndarray:
        q = torch.from_numpy((f - mu) / sd)
        return torch.cat([torch.cdist(q[i:i + 256], train).min(1).values for i in range(0, len(q), 256)]).numpy()

    d_val, d = nearest(f_val), nearest(FEATURES[space](images))
    threshold = float(np.percentile(d_val, percentile))
    return {"space": space, "threshold": threshold, "percentile": percentile, "n_train": int(len(train)),
            "n_val": int(len(d_val)),
            "val_median": float(np.median(d_val)), "median_nn_distance": float(np.median(d)),
            "rejected_share": float((d < threshold).mean()), "n": int(len(d)), "distances": [round(float(v), 4) for v in d]}


def evaluate_generator(images_dir: str | Path, labels_csv: str | Path, *, split: Optional[str] = "val",
                       n_per_genre: int = 100, checkpoint: Optional[str | Path] = None, truncation: float = 1.0,
                       seed: int = 0, images_root: Optional[str | Path] = None,
                       genres: Sequence[str] = G.GENRES, copy_check: bool = False) -> dict:
    """Per-genre and overall KID/FID, conditional accuracy and diversity ratio of images_dir/<Genre>/*.png;
    `copy_check`: also `vgg_copy_check` of them all (VGG-19 features of every training poster: minutes the first
    time, then cached).

    With `checkpoint`, first generates `n_per_genre` posters per single-genre request into images_dir."""
    images_dir = Path(images_dir)
    if not 1 <= int(n_per_genre) <= 5000:
        raise InvalidArgumentError("n-per-genre must be between 1 and 5000.")
    genres = [G.parse_genre(g) for g in genres]
    result: dict = {"split": split, "feature_extractor": "EfficientNet-Lite0 avg-pool 1280-d @128x192",
                    "vgg_feature_extractor": "VGG-19 relu4_1 + relu5_1 channel mean/std 2048-d @128x192",
                    "judges": {"cond_acc": "project classifier (EfficientNet-Lite0)",
                               "probe_cond_acc": "VGG-19 linear genre probe"}}
    t0 = time.time()
    if checkpoint is not None:
        gen = PosterGenerator.load(directory=checkpoint)
        result.update(arch=gen.arch, native_size=list(gen.native_size), truncation=truncation)
        for g in genres:
            (images_dir / g).mkdir(parents=True, exist_ok=True)
            z, rng = gen.latents(n_per_genre, seed, truncation)
            for i, im in enumerate(gen.render(z, gen.conditions([g], n_per_genre, rng))):
                im.save(images_dir / g / f"{i:04d}.png")
        result["generate_seconds"] = round(time.time() - t0, 1)
    real, scale = {}, {}
    for space, (_, _, standardise) in SPACES.items():
        f, l = real_features(labels_csv, split, images_root, space=space)
        mu, sd = (f.mean(0), f.std(0) + 1e-6) if standardise else (0.0, 1.0)
        real[space], scale[space] = ((f - mu) / sd, l), (mu, sd)
    state: dict = {}
    per: dict = {}
    all_gen: dict[str, list] = {space: [] for space in SPACES}
    all_images: list = []
    for g in genres:
        imgs = _load_generated(images_dir, g, n_per_genre)
        if not imgs:
            per[g] = {"note": f"no images in {images_dir / g}"}
            continue
        row: dict = {"n_generated": len(imgs)}
        if copy_check:
            all_images += imgs
        for space, (extract, pre, _) in SPACES.items():
            f_real, l_real = real[space]
            fg = (extract(imgs) - scale[space][0]) / scale[space][1]
            all_gen[space].append(fg)
            fr = f_real[l_real[:, G.GENRES.index(g)] > 0]
            row[f"{pre}kid"], row[f"{pre}kid_std"] = kid(fg, fr, seed=seed)
            row.update({f"{pre}fid": fid(fg, fr), "n_real": int(len(fr)),
                        f"{pre}diversity_ratio": mean_pairwise_distance(fg) / mean_pairwise_distance(fr)})
        for key in _judges():
            probs = _judge_probs(key, imgs, state)
            if probs is not None:
                row[key] = float((probs.argmax(1) == G.GENRES.index(g)).mean())
        per[g] = row
    result["per_genre"] = per
    rows = [r for r in per.values() if "kid" in r]
    if not rows:
        raise InvalidArgumentError(f"No generated images found under {images_dir}/<Genre>/*.png.")
    keys = [f"{pre}{k}" for _, pre, _ in SPACES.values() for k in ("kid", "fid", "diversity_ratio")] + list(_judges())
    overall = {f"mean_{k}": float(np.mean([r[k] for r in rows])) for k in keys if all(k in r for r in rows)}
    for space, (_, pre, _) in SPACES.items():
        f_real, fg_all = real[space][0], np.concatenate(all_gen[space])
        overall[f"pooled_{pre}kid"], overall[f"pooled_{pre}kid_std"] = kid(fg_all, f_real, seed=seed)
        overall[f"pooled_{pre}fid"] = fid(fg_all, f_real)
        overall[f"pooled_{pre}diversity_ratio"] = mean_pairwise_distance(fg_all) / mean_pairwise_distance(f_real)
    overall["n_generated"] = int(sum(len(x) for x in all_gen["effnet"]))
    overall["n_real"] = int(len(real["effnet"][0]))
    result["overall"] = overall
    if copy_check:
        result["vgg_copy_check"] = vgg_copy_check(all_images, labels_csv, images_root)
    if state.get("notes"):
        result["note"] = "; ".join(state["notes"])
    result["seconds"] = round(time.time() - t0, 1)
    return result
