"""Train the poster GAN (ours) or one of the seed baselines, resumably, on CUDA when there, else the CPU.

  python train/train_generator.py --data ../shared/data/posters --arch ours --minutes 20 --out runs/gan-ours

Archs (networks in poster_studio/generate/model.py):
  ours        PosterGAN 128x192 (W x H) + PosterCritic: projection discriminator, spectral norm, hinge loss,
              conditional BatchNorm on the genre embedding, DiffAugment, EMA generator (shipped).
  dcgan-seed  PyTorch tutorial DCGAN 64x64, BCE, Adam(2e-4, 0.5), unconditional (centre square of the poster).
  cgan-seed   the seed's conditional DCGAN 64x128 (W x H), z 100 + genre vector, BCE (centre 1:2 crop).

All archs see the same data: the training posters, preloaded once as a uint8 tensor cache at 128x192
(cache/gan/*.safetensors, built on the first run) so no step decodes a JPEG, drawn with genre-balanced
weights (mean inverse genre frequency, data.balanced_weights), random horizontal flips.

Resumable: the full state (G, D, EMA, both Adam states, step, wall-clock used, loss history, RNG) is saved
atomically as safetensors (poster_studio.training.save_state, no pickle) to <out>/state.safetensors every
--save-every steps; kill the run and rerun the same command to continue where it was saved. --minutes is
the total training wall clock across resumes. Sample grids (one row per genre, fixed z) and a loss plot
are written to <out>/ every --sample-every steps; the checkpoint (hub.save_checkpoint) to
<out>/checkpoint every --checkpoint-every steps and at the end.

  python train/train_generator.py --arch ours --out runs/gan-ours --export checkpoints/generator \
      --metrics runs/eval/ours.json runs/eval/dcgan-seed.json runs/eval/cgan-seed.json [--extra-metrics bench.json]
re-exports the trained generator (EMA weights for ours) with a model card holding the metrics: the first
evaluate-generator JSON is this model's, the others are baselines shown side by side.
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.data import balanced_weights, default_data_dir, genre_combinations, poster_cache  # noqa: E402
from poster_studio.device import default_device  # noqa: E402
from poster_studio.generate import ARCHS, diff_augment  # noqa: E402
from poster_studio.training import ema_update, load_state, save_loss_plot, save_state  # noqa: E402

HINGE_ARCHS = ("projected", "ours")  # hinge loss, DiffAugment, EMA; the seeds use BCE as their recipes did


def cache_size(arch: str) -> tuple[int, int]:
    """(W, H) of the poster cache an arch trains from: the data's own size for projected, 128x192 else."""
    return (192, 288) if arch == "projected" else (128, 192)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()), help="poster folder (images/, labels.csv)")
    p.add_argument("--arch", choices=sorted(ARCHS), default="ours")
    p.add_argument("--out", default=None, help="run folder (default runs/gan-<arch>)")
    p.add_argument("--cache", default=str(ROOT / "cache" / "gan"))
    p.add_argument("--split", default="train")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N posters (tests)")
    p.add_argument("--minutes", type=float, default=None, help="total training wall clock (across resumes)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=None, help="default: 4e-4 for ours (TTUR), 2e-4 for the seeds")
    p.add_argument("--beta1", type=float, default=None, help="Adam beta1; default 0.0 for ours, 0.5 for the seeds")
    p.add_argument("--diffaug", default=None, help="DiffAugment policy: color,translation,cutout ('' = off); default "
                   "all three for projected, translation for ours")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--width-scale", type=float, default=1.0, help="scale the generator's channel widths (tests: 0.25)")
    p.add_argument("--dump-weights", action="store_true", help=argparse.SUPPRESS)  # tests: each rank's final weights
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--sample-every", type=int, default=200)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-tqdm", action="store_true")
    p.add_argument("--crash-at-step", type=int, default=None, help=argparse.SUPPRESS)  # tests: simulate a kill
    p.add_argument("--export", default=None, help="only write the checkpoint from the saved state to this folder")
    p.add_argument("--metrics", nargs="*", default=None,
                   help="with --export: evaluate-generator JSON files (this model's first, then baselines)")
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID",
                   help="upload the written checkpoint (the --export folder, else <out>/checkpoint) to this Hub repo under generator/")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.add_argument("--extra-metrics", nargs="*", default=None, help="with --export: more JSON (e.g. the benchmark)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(ROOT / "runs" / f"gan-{args.arch}")
    if args.lr_d is None:
        args.lr_d = 4e-4 if args.arch == "ours" else 2e-4
    if args.beta1 is None:
        args.beta1 = 0.0 if args.arch in HINGE_ARCHS else 0.5
    if args.diffaug is None:
        args.diffaug = {"projected": "color,translation,cutout", "ours": "translation"}.get(args.arch, "")
    return args


# ----------------------------------------------------------------------------------------------- data
def real_batch(images_u8: torch.Tensor, arch: str, gen: torch.Generator) -> torch.Tensor:
    """uint8 cached posters -> float [-1, 1] at the arch's training shape, random horizontal flip."""
    cache_h, cache_w = images_u8.shape[-2:]
    x = images_u8.float() / 127.5 - 1.0
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if arch == "dcgan-seed":  # tutorial: Resize(64) + CenterCrop(64) -> the centre square
        top = (cache_h - cache_w) // 2
        x = F.interpolate(x[:, :, top: top + cache_w], size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    elif arch == "cgan-seed":  # 64x128 (W x H): centre 1:2 crop
        w = cache_h // 2
        left = (cache_w - w) // 2
        x = F.interpolate(x[:, :, :, left: left + w], size=(128, 64), mode="bilinear", antialias=True, align_corners=False)
    return x


# ----------------------------------------------------------------------------------------------- models
def make_models(arch: str, width_scale: float, prior: dict):
    g_cls, d_cls = ARCHS[arch]
    if arch == "projected":
        chans = [max(4, int(round(c * width_scale))) for c in (256, 128, 64, 32, 16)]
        return g_cls(channels=chans, genre_prior=prior), d_cls()
    if arch == "ours":
        chans = [max(4, int(round(c * width_scale))) for c in (256, 192, 128, 64, 32, 16)]
        dchans = [max(4, int(round(c * width_scale))) for c in (32, 64, 128, 256, 256)]
        return g_cls(channels=chans, genre_prior=prior), d_cls(channels=dchans)
    if arch == "dcgan-seed":
        ngf = max(4, int(round(64 * width_scale)))
        return g_cls(ngf=ngf, genre_prior=prior), d_cls(ndf=ngf)
    ngf = max(4, int(round(32 * width_scale)))
    return g_cls(ngf=ngf, genre_prior=prior), d_cls(ndf=ngf)


def fixed_grid_inputs(z_dim: int, cols: int = 8, seed: int = 1234):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(cols, z_dim, generator=g).repeat(G.NUM_GENRES, 1)
    c = torch.eye(G.NUM_GENRES).repeat_interleave(cols, 0)
    return z, c


@torch.no_grad()
def save_samples(net, path: Path, cols: int = 8) -> None:
    from torchvision.utils import make_grid, save_image

    was = net.training
    net.eval()
    z, c = fixed_grid_inputs(net.z_dim, cols)
    dev = next(net.parameters()).device
    x = net(z.to(dev) * 0.8, c.to(dev)).cpu()
    net.train(was)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid((x + 1) / 2, nrow=cols, padding=2), str(path))


ARCH_NOTES = {
    "ours": "Lightweight conditional GAN at 128x192 (W x H): generator z(128) + genre embedding -> 4x6 -> five "
            "nearest-upsample + 3x3 conv blocks with conditional BatchNorm (gain/bias from [z, genre embedding]), "
            "tanh; projection discriminator with spectral norm (strided 4x4 convs, sum pooling), hinge loss, "
            "DiffAugment on real and fake, EMA of the generator weights (the EMA copy is shipped). "
            "Chosen over FastGAN/StyleGAN2-ADA because only a few CPU-minutes were available: a small "
            "DCGAN-shaped net with these tricks converges in hundreds of steps, the heavy ones need days.",
    "projected": "Generate v2: FastGAN-lite generator at 192x288 (W x H): z(128) + multi-hot genre embedding -> 6x4 "
                 "-> 18x12 -> four nearest-upsample blocks of two 3x3 convs with noise injection and conditional "
                 "BatchNorm, skip-layer excitation; Projected GAN discriminator: the frozen ImageNet "
                 "EfficientNet-Lite0's first four stages at the poster's own 2:3 shape, fixed random cross-channel "
                 "and cross-scale mixing, spectral-norm heads per scale with a projection term of the genre "
                 "condition; hinge loss, DiffAugment (colour, translation, cutout), EMA generator shipped.",
    "dcgan-seed": "Seed baseline: PyTorch tutorial DCGAN, 64x64, BCE, Adam(2e-4, beta1 0.5), unconditional.",
    "cgan-seed": "Seed baseline: conditional DCGAN, 64x128 (W x H), input z(100) + genre vector, BCE, Adam(2e-4, 0.5).",
}


def summarize_metrics(eval_files: list[str], extra_files: list[str] | None = None) -> dict:
    """Flat table for the model card: headline figures per arch (first file = the shipped model), then the
    full per-genre results of every evaluation."""
    evals = [json.loads(Path(f).read_text()) for f in eval_files]
    out: dict = {}
    keys = ("mean_kid", "mean_fid", "mean_cond_acc", "mean_diversity_ratio", "pooled_kid", "pooled_fid",
            "mean_vgg_kid", "mean_vgg_fid", "mean_probe_cond_acc", "mean_vgg_diversity_ratio")
    for f, ev in zip(eval_files, evals):
        arch = _run_label(f, ev)
        for k in keys:
            if k in ev["overall"]:
                out[f"{arch}/{k}"] = round(float(ev["overall"][k]), 5)
        out[f"{arch}/kid_per_genre"] = {g: round(r["kid"], 5) for g, r in ev["per_genre"].items() if "kid" in r}
        if all("cond_acc" in r for r in ev["per_genre"].values()):
            out[f"{arch}/cond_acc_per_genre"] = {g: round(r["cond_acc"], 3) for g, r in ev["per_genre"].items()}
        if all("probe_cond_acc" in r for r in ev["per_genre"].values()):
            out[f"{arch}/probe_cond_acc_per_genre"] = {g: round(r["probe_cond_acc"], 3)
                                                       for g, r in ev["per_genre"].items()}
        if ev.get("note"):
            out[f"{arch}/note"] = ev["note"]
    first = evals[0]
    base = [ev for ev in evals[1:] if "mean_kid" in ev["overall"] and ev.get("arch") != first.get("arch")]
    if base and "mean_kid" in first["overall"]:
        best = min(ev["overall"]["mean_kid"] for ev in base)
        out["kid_improvement_vs_best_seed"] = round(best / max(first["overall"]["mean_kid"], 1e-12), 3)
    for f in extra_files or []:
        out[Path(f).stem] = json.loads(Path(f).read_text())
    out["evaluation"] = {
        "command": "python -m poster_studio evaluate-generator --checkpoint <ckpt> --images <dir> --labels "
                   "<data>/labels.csv --split val --n-per-genre N",
        "n_per_genre": first["per_genre"][next(iter(first["per_genre"]))].get("n_generated"),
        "truncation": first.get("truncation"), "feature_extractor": first.get("feature_extractor"),
        "split": first.get("split")}
    return out


def _run_label(path: str, ev: dict) -> str:
    """A run's name in the model card: the evaluation file's stem (e.g. gan-ours-long), else its arch."""
    stem = Path(path).stem
    return stem if stem and stem != "metrics" else ev.get("arch", "?")


def full_results(eval_files: list[str]) -> dict:
    return {_run_label(f, ev): ev for f, ev in ((f, json.loads(Path(f).read_text())) for f in eval_files)}


def write_checkpoint(net, out_dir: Path, args, state_info: dict, metrics: dict | None = None,
                     evaluation: dict | None = None) -> None:
    n = state_info.get("images", "?")
    data = (f"{n} training posters (split `{args.split}` of the shared poster set, 182x268 JPEGs, 7 multi-label "
            f"genres), centre-fitted to 2:3 and resized to {'x'.join(map(str, cache_size(args.arch)))}; genre-balanced sampling, horizontal flips.")
    training = (f"`python train/train_generator.py --arch {args.arch} --minutes {args.minutes} --batch {args.batch}` on a "
                f"shared 2-core CPU (1-2 threads, sharing it with other jobs): {state_info.get('step', 0)} steps in "
                f"{state_info.get('elapsed', 0) / 60:.1f} min. Adam lr G {args.lr_g}, D {args.lr_d}, beta1 {args.beta1}. "
                + ("Hinge loss, DiffAugment '" + args.diffaug + f"', EMA {args.ema}." if args.arch in HINGE_ARCHS
                   else "BCE."))
    desc = ARCH_NOTES[args.arch] + (
        "\n\nServed at 400x600 by Lanczos resampling of the native output (no learned upscaler shipped: none was "
        "trained within the compute budget). Empty genre list = each poster's genre set drawn from the training "
        "label distribution (`genre_prior` in config.json). Truncation multiplies z by psi in (0, 1].")
    if metrics:
        desc += ("\n\nMetrics: `python -m poster_studio evaluate-generator` (EfficientNet-Lite0 pooled features; KID and "
                 "FID against the val posters of each genre, averaged over the 7 single-genre requests; conditional "
                 "accuracy = share whose top-1 genre by the project classifier is the requested one; diversity = "
                 "mean pairwise feature distance of generated / of real posters). Same data and the same 2-core CPU for "
                 "every run; the first row is this checkpoint (see Training for its budget), the seed baselines "
                 "and `gan-ours` had the same 20-minute wall clock:\n\n| run | KID | FID | cond. acc. | diversity |\n"
                 "|---|---|---|---|---|\n")
        archs = list(dict.fromkeys(k.split("/")[0] for k in metrics if "/" in k))
        for a in archs:
            cells = [metrics.get(f"{a}/mean_{k}") for k in ("kid", "fid", "cond_acc", "diversity_ratio")]
            desc += f"| {a} | " + " | ".join("n/a" if v is None else f"{v:.4g}" for v in cells) + " |\n"
    extra = {}
    grid = Path(args.out) / "samples_latest.png"
    if grid.is_file() and grid.stat().st_size < 5_000_000:
        desc += ("\n\n![samples](samples.png)\n\nSamples (`samples.png`): one row per genre (" + ", ".join(G.GENRES) + "), the same 8 z per column, truncation 0.8.\n")
        extra["samples.png"] = lambda p: shutil.copyfile(grid, p)
    if evaluation:
        desc += "\nFull per-genre results of every evaluated arch: `evaluation.json`."
        extra["evaluation.json"] = lambda p: Path(p).write_text(json.dumps(evaluation, indent=2))
    hub.save_checkpoint(net, out_dir, description=desc, data=data, training=training, metrics=metrics or {},
                        extra_files=extra)


# ----------------------------------------------------------------------------------------------- training
def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) under torchrun (WORLD_SIZE > 1), after joining the process group; else
    (0, 1, 0). NCCL on CUDA, gloo on the CPU."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rank, world, local_rank = distributed()
    lead = rank == 0  # the one process that writes files
    if world > 1 and args.arch not in HINGE_ARCHS:
        raise SystemExit("several processes: only the hinge archs (projected, ours) are set up for DDP")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.safetensors"
    show = not args.no_tqdm and lead

    if rank:  # rank 0 builds the poster cache, the others wait and read it
        torch.distributed.barrier()
    cache = poster_cache(args.data, args.cache, args.split, args.max_images, show, cache_size(args.arch))
    if world > 1 and not rank:
        torch.distributed.barrier()
    images, labels = cache["images"], cache["labels"]
    prior = genre_combinations(cache["records"])
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    dev = default_device()
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", local_rank)
    G_net, D_net = make_models(args.arch, args.width_scale, prior)
    G_net, D_net = G_net.to(dev), D_net.to(dev)
    G_ema = copy.deepcopy(G_net).eval().requires_grad_(False)
    hinge = args.arch in HINGE_ARCHS
    betas = (args.beta1, 0.99) if hinge else (args.beta1, 0.999)
    opt_g = torch.optim.Adam(G_net.parameters(), lr=args.lr_g, betas=betas)
    opt_d = torch.optim.Adam([p for p in D_net.parameters() if p.requires_grad], lr=args.lr_d, betas=betas)
    history = {"step": [], "d_loss": [], "g_loss": []}
    step, elapsed = 0, 0.0
    gen = torch.Generator().manual_seed(args.seed)

    if state_path.is_file():
        st = load_state(state_path)
        if st.get("arch") != args.arch:
            raise SystemExit(f"{state_path} belongs to arch {st.get('arch')!r}, not {args.arch!r}: use another --out.")
        G_net.load_state_dict(st["G"]), D_net.load_state_dict(st["D"]), G_ema.load_state_dict(st["G_ema"])
        opt_g.load_state_dict(st["opt_g"]), opt_d.load_state_dict(st["opt_d"])
        step, elapsed = int(st["step"]), float(st["elapsed"])
        history = {k: list(v) for k, v in st["history"].items()}
        gen.set_state(st["rng"])
        if lead:
            print(f"resumed from step {step} ({elapsed / 60:.1f} min used)", flush=True)
    if rank:  # other ranks draw other batches (the saved RNG state is rank 0's)
        gen.manual_seed(args.seed * 1_000_003 + step * 101 + rank)

    train_args = {k: getattr(args, k) for k in ("minutes", "batch", "lr_g", "lr_d", "beta1", "diffaug", "ema", "split")}
    if state_path.is_file() and args.export:
        for k, v in json.loads(st.get("train_args", "{}")).items():
            setattr(args, k, v)  # describe the run as it was trained
    shipped = G_ema if hinge else G_net
    info = lambda: {"step": step, "elapsed": elapsed, "images": len(images), "images_seen": step * args.batch * world}  # noqa: E731
    if args.export:
        metrics = summarize_metrics(args.metrics, args.extra_metrics) if args.metrics else None
        write_checkpoint(shipped, Path(args.export), args, info(), metrics,
                         full_results(args.metrics) if args.metrics else None)
        print(f"exported {args.arch} (step {step}) to {args.export}")
        if args.push_to_hub:
            print(hub.push("generator", args.push_to_hub, private=args.private, folder=args.export))
        return info()

    def save() -> None:
        if lead:
            save_state(state_path, {
                "arch": args.arch, "G": G_net.state_dict(), "D": D_net.state_dict(), "G_ema": G_ema.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step, "elapsed": elapsed,
                "history": history, "rng": gen.get_state(), "train_args": json.dumps(train_args)})

    # DDP averages the gradients over the processes (one forward and one backward per module and step).
    G_train, D_train = G_net, D_net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [local_rank] if dev.type == "cuda" else None
        G_train, D_train = DDP(G_net, device_ids=ids), DDP(D_net, device_ids=ids)

    def keep_going() -> bool:
        """Every rank stops at the same step: rank 0's clock decides."""
        go = torch.tensor([float(step < max_steps and elapsed < budget)], device=dev)
        if world > 1:
            torch.distributed.broadcast(go, 0)
        return bool(go.item())

    weights = balanced_weights(labels)
    budget = args.minutes * 60 if args.minutes else float("inf")
    max_steps = args.max_steps or 10**9
    bar = tqdm(total=None if max_steps == 10**9 else max_steps, initial=step, disable=not show, mininterval=10,
               desc=args.arch)
    G_net.train(), D_net.train()
    aug = args.diffaug if hinge else ""
    t_last = time.time()
    while keep_going():
        idx = torch.multinomial(weights, args.batch, replacement=True, generator=gen)
        real = real_batch(images[idx], args.arch, gen).to(dev)
        c = labels[idx].to(dev)
        z = torch.randn(args.batch, G_net.z_dim, generator=gen).to(dev)
        fake = G_train(z, c)

        # discriminator step
        if hinge:  # one forward for real and fake (no BatchNorm in these critics: the same as two)
            d_out = D_train(diff_augment(torch.cat([real, fake.detach()]), aug, gen), torch.cat([c, c]))
            d_real, d_fake = d_out[: len(real)], d_out[len(real):]
            d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        else:  # the seeds' recipe: separate real and fake batches through BatchNorm
            d_real, d_fake = D_train(real, c), D_train(fake.detach(), c)
            d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                      + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        # generator step (same fakes)
        g_out = D_train(diff_augment(fake, aug, gen), c)
        g_loss = -g_out.mean() if hinge else F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if hinge:
            ema_update(G_ema, G_net, min(args.ema, (1 + step) / (10 + step)))

        step += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        history["step"].append(step)
        history["d_loss"].append(d_loss.item())
        history["g_loss"].append(g_loss.item())
        bar.update(1)
        bar.set_postfix(d=f"{history['d_loss'][-1]:.3f}", g=f"{history['g_loss'][-1]:.3f}", min=f"{elapsed / 60:.1f}", refresh=False)
        if args.crash_at_step is not None and step >= args.crash_at_step:
            raise KeyboardInterrupt(f"simulated kill at step {step}")
        if step % args.save_every == 0:
            save()
        if lead and step % args.sample_every == 0:
            save_samples(shipped, out / "samples" / f"step_{step:06d}.png")
            save_samples(shipped, out / "samples_latest.png")
            save_loss_plot(history, out / "loss.png")
        if lead and step % args.checkpoint_every == 0:
            write_checkpoint(shipped, out / "checkpoint", args, info())
    bar.close()
    if world > 1:  # buffers (BatchNorm statistics, spectral-norm vectors) as DDP would sync them at the next step
        for m in (G_net, D_net, G_ema):
            for buf in m.buffers():
                torch.distributed.broadcast(buf, 0)
    save()
    if args.dump_weights:
        save_file({f"{k}.{n}": v.detach().cpu().contiguous() for k, m in (("G", G_net), ("D", D_net), ("G_ema", G_ema))
                   for n, v in m.state_dict().items()}, str(out / f"weights_rank{rank}.safetensors"))
    if world > 1:
        torch.distributed.destroy_process_group()
    if not lead:
        return info()
    save_samples(shipped, out / "samples_latest.png")
    save_samples(shipped, out / "samples" / f"step_{step:06d}.png")
    save_loss_plot(history, out / "loss.png")
    write_checkpoint(shipped, out / "checkpoint", args, info())
    print(json.dumps({"arch": args.arch, "step": step, "minutes": round(elapsed / 60, 2),
                      "images_seen": info()["images_seen"], "out": str(out)}), flush=True)
    if args.push_to_hub:
        print(hub.push("generator", args.push_to_hub, private=args.private, folder=out / "checkpoint"))
    return info()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        sys.exit(130)
