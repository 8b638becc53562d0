"""Train the poster upscaler (PosterUpscaler, x2 by default) on the CPU.

  python train/train_upscaler.py --data ../shared/data/posters --minutes 13

Each step takes --batch random --patch x --patch crops (random horizontal flip) of training posters, degrades
each on the fly into a low-resolution input (poster_studio.upscale.degrade: blur, bicubic/bilinear/area
downscale, noise, JPEG) and minimises the L1 distance between the network's output and the crop, plus
--perceptual x the LPIPS-like VGG-19 distance (evaluate.feature_distance; off by default: it costs ~3x per step).
Adam at --lr, divided by 10 for the last 20% of the budget (--minutes of training in total, or --steps).

Resumable: state (network, Adam, step, training seconds, loss history) is saved atomically to
<out>/state.safetensors every --save-every steps and on Ctrl-C; rerun the same command to continue (a larger
--minutes trains on). Each step's batch depends only on --seed and the step number, so a resumed run repeats
an uninterrupted one. At the end --eval val posters are evaluated (evaluate-upscaler's protocol; JSON in
<out>/eval.json) and the checkpoint (config.json + model.safetensors + model card with those figures) is
written to --checkpoint.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import hub  # noqa: E402
from poster_studio.data import PosterDataset, default_data_dir  # noqa: E402
from poster_studio.device import default_device  # noqa: E402
from poster_studio.images import to_tensor  # noqa: E402
from poster_studio.training import load_state, save_state  # noqa: E402
from poster_studio.upscale import Degradation, PosterUpscaler, Upscaler  # noqa: E402
from poster_studio.upscale.evaluate import evaluate_upscaler, feature_distance  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()), help="poster folder (images/, labels.csv)")
    p.add_argument("--out", default=str(ROOT / "runs" / "upscaler"), help="run folder (state.safetensors, eval.json)")
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "upscaler"), help="checkpoint folder written at the end")
    p.add_argument("--minutes", type=float, default=15.0, help="training minutes in total, over all resumed runs")
    p.add_argument("--steps", type=int, default=None, help="stop at this step instead (smoke tests)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=96, help="high-resolution crop side (a multiple of --scale)")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--perceptual", type=float, default=0.0, help="weight of the VGG-19 feature distance (e.g. 0.01)")
    p.add_argument("--limit", type=int, default=None, help="use only this many training posters")
    p.add_argument("--eval", type=int, default=100, help="val posters evaluated at the end (0 = none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=100, help="save the state every N steps")
    p.add_argument("--log-every", type=int, default=50)
    args = p.parse_args(argv)
    if args.patch % args.scale or args.patch < 2 * args.scale:
        p.error(f"--patch must be a multiple of --scale ({args.scale}) of at least {2 * args.scale}")
    return args


def make_batch(ds: PosterDataset, step: int, args, degrade: Degradation) -> tuple[torch.Tensor, torch.Tensor]:
    """(low-res inputs, high-res targets) of one step: random crops of random posters, degraded; seeded by step."""
    g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    lrs, hrs = [], []
    for i in torch.randint(len(ds), (args.batch,), generator=g).tolist():
        x = to_tensor(ds.image(i))
        h, w = x.shape[-2:]
        if min(h, w) < args.patch:
            raise SystemExit(f"{ds.path(i)} is {w}x{h}, smaller than --patch {args.patch}")
        top = int(torch.randint(h - args.patch + 1, (), generator=g))
        left = int(torch.randint(w - args.patch + 1, (), generator=g))
        hr = x[:, top:top + args.patch, left:left + args.patch]
        if torch.rand((), generator=g) < 0.5:
            hr = hr.flip(-1)
        hrs.append(hr)
        lrs.append(degrade(hr, g))
    return torch.stack(lrs), torch.stack(hrs)


def train_step(model, opt, lr: torch.Tensor, hr: torch.Tensor, perceptual: float = 0.0) -> float:
    """One Adam step on L1 (+ perceptual x VGG distance); returns the L1 loss."""
    out = model(lr)
    l1 = F.l1_loss(out, hr)
    loss = (l1 + perceptual * feature_distance(out, hr).mean()) if perceptual else l1
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return l1.item()


def write_checkpoint(model: PosterUpscaler, args, step: int, seconds: float, history: list, evaluation) -> Path:
    tail = [h[1] for h in history[-100:]]
    metrics = {"steps": step, "train_minutes": round(seconds / 60, 1)}
    if tail:
        metrics["train_l1_last100"] = sum(tail) / len(tail)
    if evaluation:
        metrics["val_posters"] = evaluation["images"]
        for m, r in evaluation["methods"].items():
            metrics[f"{m}_psnr_db"] = r["psnr_db"]
            metrics[f"{m}_vgg_distance"] = r["vgg_distance"]
            metrics[f"{m}_seconds_per_image"] = r["seconds_per_image"]
        metrics["psnr_gain_over_lanczos_db"] = evaluation["psnr_gain_over_lanczos_db"]
    return hub.save_checkpoint(
        model, args.checkpoint,
        description=(f"Poster upscaler x{model.scale}: a compact SR CNN (SRVGGNetCompact-like, {model.channels} "
                     f"channels, {model.layers + 1} conv + PReLU layers at low resolution, PixelShuffle) predicting "
                     "a residual over bicubic upsampling; `poster_studio.upscale.Upscaler` runs it and resizes to "
                     "the exact size with Lanczos (e.g. ~200x300 -> 400x600)."),
        data=("Random crops of the train split of ../shared/data/posters (182x268 JPEG thumbnails), degraded on the "
              "fly (blur, bicubic/bilinear/area downscale, noise, JPEG); metrics on val posters: HR downscaled by "
              "plain bicubic and upscaled back (PSNR on RGB with the border shaved, LPIPS-like VGG-19 relu2_1/relu3_1 "
              "distance, lower is better)." + ("" if evaluation else " No evaluation ran: see evaluate-upscaler.")),
        training=(f"L1{f' + {args.perceptual} x VGG distance' if args.perceptual else ''}, Adam lr {args.lr} "
                  f"(/10 for the last 20%), batch {args.batch}, {args.patch}px crops, {step} steps, "
                  f"{seconds / 60:.1f} min on {default_device().type} ({args.threads} threads); "
                  "see train/train_upscaler.py."),
        metrics=metrics)


def train(args) -> Path:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = default_device()
    ds = PosterDataset(Path(args.data) / "images", Path(args.data) / "labels.csv", split="train", limit=args.limit)
    model = PosterUpscaler(scale=args.scale, channels=args.channels, layers=args.layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    degrade = Degradation(scale=args.scale)
    config = {"scale": args.scale, "channels": args.channels, "layers": args.layers}
    state_path = out / "state.safetensors"
    step, seconds, history = 0, 0.0, []
    if state_path.exists():
        st = load_state(state_path)
        if st["config"] != config:
            raise SystemExit(f"{state_path} is for {st['config']}, not {config}: use those options or another --out")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, seconds = int(st["step"]), float(st["seconds"])
        history = st["history"].tolist()
        print(f"resumed from step {step} ({seconds / 60:.1f} min trained)", flush=True)

    def save():
        save_state(state_path, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                                "seconds": seconds, "config": config,
                                "history": torch.tensor(history, dtype=torch.float64).view(-1, 2)})

    budget = args.minutes * 60
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(ds)} training posters, {n_params:,} parameters, {dev}, {args.threads} threads", flush=True)
    model.train()
    window, t_log = [], time.time()
    try:
        while seconds < budget and (args.steps is None or step < args.steps):
            t0 = time.time()
            progress = max(seconds / budget if budget else 1.0, step / args.steps if args.steps else 0.0)
            for grp in opt.param_groups:
                grp["lr"] = args.lr * (0.1 if progress >= 0.8 else 1.0)
            lr, hr = make_batch(ds, step, args, degrade)
            loss = train_step(model, opt, lr.to(dev), hr.to(dev), args.perceptual)
            step += 1
            seconds += time.time() - t0
            history.append((step, loss))
            window.append(loss)
            if step % args.log_every == 0:
                print(f"step {step}  l1 {sum(window) / len(window):.4f}  {len(window) / (time.time() - t_log):.2f} "
                      f"steps/s  {seconds / 60:.1f}/{args.minutes:g} min", flush=True)
                window, t_log = [], time.time()
            if step % args.save_every == 0:
                save()
    except KeyboardInterrupt:
        save()
        print(f"interrupted at step {step}: state saved, rerun the same command to resume", flush=True)
        raise SystemExit(130)
    save()
    model.eval()
    evaluation = None
    if args.eval:
        evaluation = evaluate_upscaler(upscaler=Upscaler(model, dev), n_images=args.eval, data_dir=args.data)
        (out / "eval.json").write_text(json.dumps(evaluation, indent=2))
        print(json.dumps(evaluation["methods"]), flush=True)
    folder = write_checkpoint(model.cpu(), args, step, seconds, history, evaluation)
    print(f"done: step {step}, {seconds / 60:.1f} min of training; checkpoint {folder}", flush=True)
    return folder


def main(argv=None) -> Path:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
