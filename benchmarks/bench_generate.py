"""Poster generation latency on this CPU, per installed engine: 8 posters at native size and upscaled to 400x600
(by the learned upscaler when checkpoints/upscaler exists, else Lanczos: the JSON says which).

  python benchmarks/bench_generate.py [--n 8] [--repeats 5] [--threads 0] [--checkpoint DIR] [--out FILE]

Prints JSON: median / min seconds per call (after one warm-up call) of `PosterGenerator.generate` for each engine,
with the targets (instant: native < 1 s, upscaled < 3 s for 8 posters; latent: 8 at 400x600 <= 10 s, novelty
check included, and <= 45 s with --guidance steps of classifier guidance), and the process's peak RSS. --threads 0 keeps torch's default thread count
(what the app uses); 1 reproduces a single-core budget. Without a trained checkpoint (checkpoints/generator)
it times a randomly initialised network of the same architecture (same cost) and says so.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio.errors import CheckpointError  # noqa: E402
from poster_studio.generate import PosterGAN, PosterGenerator  # noqa: E402


def timed(fn, repeats: int) -> dict:
    fn()  # warm-up (first-call allocations, oneDNN kernel selection)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--genres", nargs="*", default=["Comedy", "Romance"])
    p.add_argument("--guidance", type=int, default=10, help="latent engine: also time this many guidance steps "
                                                              "(0: skip)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        gen, source = PosterGenerator.load(directory=args.checkpoint), "trained checkpoint"
    except CheckpointError as exc:
        gen, source = PosterGenerator(PosterGAN()), f"random init ({str(exc)[:80]})"
    import resource

    result = {"checkpoint": source, "n": args.n, "upscaler": gen.upscale_method, "threads": torch.get_num_threads(),
              "novelty_check": gen.novelty is not None, "engines": {}}
    targets = {"instant": {"native_s": 1.0, "upscaled_s": 3.0}, "latent": {"native_s": 10.0, "upscaled_s": 10.0}}
    for engine in gen.engines:
        net = gen.nets[engine]
        row = {"arch": net.arch, "native_size": list(net.native_size),
               "native": timed(lambda: gen.generate(args.genres, n=args.n, seed=0, engine=engine), args.repeats),
               "upscaled_400x600": timed(lambda: gen.generate(args.genres, n=args.n, seed=0, size="400x600",
                                                              engine=engine), args.repeats),
               "targets": targets[engine]}
        row["meets_targets"] = (row["native"]["median_s"] < targets[engine]["native_s"]
                                and row["upscaled_400x600"]["median_s"] < targets[engine]["upscaled_s"])
        if engine == "latent" and args.guidance and gen.guidance is not None:  # the target: <= 45 s
            row["guided_400x600"] = {"steps": args.guidance, **timed(lambda: gen.generate(
                args.genres, n=args.n, seed=0, size="400x600", engine=engine, guidance=args.guidance),
                max(1, args.repeats // 2))}
            row["guided_target_s"] = 45.0
            row["meets_targets"] = row["meets_targets"] and row["guided_400x600"]["median_s"] <= 45.0
        result["engines"][engine] = row
    result["morph_8_native"] = timed(lambda: gen.morph(["Comedy"], ["Horror_Thriller"], steps=8), args.repeats)
    result["meets_targets"] = all(r["meets_targets"] for r in result["engines"].values())
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return result


if __name__ == "__main__":
    main()
