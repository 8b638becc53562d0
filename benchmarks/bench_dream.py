"""Dream speed on this CPU (JSON): a genre dream at 400x600 with the default settings (target: within 30 s, a preview
at least every 3 s), deep dream on a 600 px picture with the default layer (target: within 20 s) and with a VGG-19
layer, the principal masks of a poster, and the process's peak RSS.

  python benchmarks/bench_dream.py [--threads 1] [--repeats 2] [--out runs/bench_dream.json]

--threads 1 is what the app gives each request (app.tune_process); 2 is this machine's cores.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio.dream import Dreamer  # noqa: E402

TARGETS = {"genre_dream_s": 30.0, "preview_gap_s": 3.0, "deep_dream_s": 20.0}


def picture_600() -> Image.Image:
    content = ROOT.parent / "shared" / "data" / "content" / "chelsea.png"
    if content.is_file():
        img = Image.open(content).convert("RGB")
        return img.resize((600, round(600 * img.height / img.width)), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (400, 600, 3), dtype=np.uint8))


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    """(median seconds, the largest gap between previews of the last run)."""
    times, gaps = [], []
    for _ in range(repeats):
        stamps = []

        def progress(_fraction, preview):
            if preview is not None:
                stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        stamps.append(t0)
        fn(progress)
        times.append(time.perf_counter() - t0)
        gaps = list(np.diff(stamps))
    return float(np.median(times)), gaps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    d = Dreamer.load()
    pic = picture_600()
    d.genre_dream(["Comedy"], size="128x192", steps=2)  # warm-up
    genre_s, gaps = timed(lambda pr: d.genre_dream(["Horror_Thriller"], progress=pr), args.repeats)
    deep_s, _ = timed(lambda pr: d.deep_dream(pic, progress=pr), args.repeats)
    vgg_s, _ = timed(lambda pr: d.deep_dream(pic, layer="relu4_2", progress=pr), 1)
    t0 = time.perf_counter()
    d.classifier.principal_masks(pic)
    masks_s = time.perf_counter() - t0
    result = {
        "threads": args.threads, "cpu": "this machine", "picture": list(pic.size),
        "genre_dream_400x600_s": round(genre_s, 2), "genre_dream_steps": d.DEFAULT_STEPS,
        "largest_preview_gap_s": round(float(max(gaps)), 2) if gaps else None,
        "deep_dream_600px_default_layer_s": round(deep_s, 2), "default_layer": d.DEFAULT_LAYER,
        "deep_dream_600px_relu4_2_s": round(vgg_s, 2),
        "principal_masks_s": round(masks_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": TARGETS,
        "met": {"genre_dream": bool(genre_s <= TARGETS["genre_dream_s"]),
                "previews": bool(gaps) and bool(max(gaps) <= TARGETS["preview_gap_s"]),
                "deep_dream": bool(deep_s <= TARGETS["deep_dream_s"])},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
