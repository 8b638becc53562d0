"""How good the classifier is: multi-label metrics on a labelled split, and per-genre threshold tuning."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import genres as G
from ..data import PosterDataset
from .service import Classifier


def multilabel_metrics(probs: np.ndarray, targets: np.ndarray, thresholds: Sequence[float] | float = 0.5,
                       genres: Sequence[str] = G.GENRES) -> dict:
    """micro/macro-F1, per-genre F1 and AP, mAP, and the share of posters whose top genre is among its labels."""
    from sklearn.metrics import average_precision_score, f1_score

    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float32), (probs.shape[1],))
    pred = (probs >= t).astype(int)
    y = targets.astype(int)
    ap = [float(average_precision_score(y[:, j], probs[:, j])) if y[:, j].any() else float("nan")
          for j in range(y.shape[1])]
    f1 = f1_score(y, pred, average=None, zero_division=0)
    top = probs.argmax(1)
    return {
        "n": int(len(y)),
        "micro_f1": round(float(f1_score(y, pred, average="micro", zero_division=0)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 4),
        "mAP": round(float(np.nanmean(ap)), 4),
        "top1_in_labels": round(float(y[np.arange(len(y)), top].mean()), 4),
        "per_genre": {g: {"f1": round(float(f), 4), "ap": round(a, 4)} for g, f, a in zip(genres, f1, ap)},
    }


def tune_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per-genre threshold maximising that genre's F1."""
    from sklearn.metrics import f1_score

    grid = np.linspace(0.05, 0.95, 91)
    out = []
    for j in range(probs.shape[1]):
        scores = [f1_score(targets[:, j], probs[:, j] >= t, zero_division=0) for t in grid]
        out.append(round(float(grid[int(np.argmax(scores))]), 3))
    return out


def evaluate_classifier(images_dir: str | Path, labels_csv: str | Path, split: Optional[str] = "val",
                        classifier: Optional[Classifier] = None, limit: Optional[int] = None) -> dict:
    clf = classifier or Classifier.load()
    ds = PosterDataset(images_dir, labels_csv, split=None if split in (None, "all") else split, limit=limit)
    t0 = time.time()
    probs = clf.predict_proba([ds.path(i) for i in range(len(ds))])
    out = multilabel_metrics(probs, ds.targets.numpy(), clf.thresholds, clf.genres)
    out["split"] = split
    out["seconds"] = round(time.time() - t0, 1)
    return out
