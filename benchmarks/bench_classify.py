"""Classifier latency on this CPU: one poster from file (decode + preprocess + forward), with Grad-CAM
heatmaps for every genre, and with the similar-poster search. Prints JSON (p50/p90 in ms, peak RSS).

  python benchmarks/bench_classify.py [--data ../shared/data/posters] [--n 30] [--checkpoint FOLDER]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poster_studio.classify import Classifier  # noqa: E402
from poster_studio.data import default_data_dir  # noqa: E402


def timed(fn, items) -> dict:
    ms = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return {"p50_ms": round(statistics.median(ms), 1), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "n": len(ms)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(default_data_dir()))
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--checkpoint", default=None, help="classifier checkpoint folder (default: the shipped one)")
    args = p.parse_args()
    import torch

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    clf = Classifier.load(directory=args.checkpoint)
    load_s = time.perf_counter() - t
    files = sorted((Path(args.data) / "images").glob("val_*.jpg"))[: args.n]
    clf.heatmap(clf.analyze(files[0]))  # warm-up

    def all_heatmaps(f):
        a = clf.analyze(f, k=0)
        return [clf.heatmap(a, g) for g in clf.genres]

    out = {
        "checkpoint": args.checkpoint or "shipped",
        "network": type(clf.model).__name__,
        "threads": torch.get_num_threads(),
        "load_seconds": round(load_s, 2),
        "classify": timed(clf.predict, files),
        "classify_plus_heatmaps_all_genres": timed(all_heatmaps, files),
        "classify_plus_one_heatmap": timed(lambda f: clf.heatmap(clf.analyze(f, k=0)), files),
        "classify_heatmap_similar_top5": timed(lambda f: clf.heatmap(clf.analyze(f, k=5)), files),
        "switch_heatmap_genre": timed(lambda a: clf.heatmap(a, "Comedy"), [clf.analyze(f, k=0) for f in files]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_load_mb": round(rss0, 1),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
