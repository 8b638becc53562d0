"""Full fine-tune speed of the classifier's backbones on this CPU (issue 24: size a Lite2 run before starting it):
posters/s of one AdamW step on a batch of 16 random posters (forward, BCE, backward), channels-last, and one-poster
inference ms, for Lite0 at 288x192 (the shipped recipe) and Lite2 at 384x256 (near its own 260). Prints JSON.

  python benchmarks/bench_classifier_train.py [--threads 2] [--steps 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poster_studio.classify.model import from_imagenet  # noqa: E402

CASES = ((0, (288, 192)), (2, (384, 256)))  # 384x256: the 2:3 size near Lite2's 260 that --size takes  # (variant, (H, W))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads, "batch": args.batch}
    for variant, (h, w) in CASES:
        model = from_imagenet(variant=variant).train().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        x = torch.rand(args.batch, 3, h, w).to(memory_format=torch.channels_last)
        y = (torch.rand(args.batch, 7) > 0.7).float()
        for i in range(args.steps + 1):
            if i == 1:
                t0 = time.perf_counter()
            logits = model(x)
            logits = logits[0] if isinstance(logits, tuple) else logits
            loss = F.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out[f"lite{variant}_{h}x{w}_train_posters_per_s"] = round(args.batch * args.steps / (time.perf_counter() - t0), 1)
        model.eval()
        with torch.no_grad():
            model(x[:1])
            t0 = time.perf_counter()
            model(x[:1])
            out[f"lite{variant}_{h}x{w}_infer_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
