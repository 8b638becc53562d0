"""Train Generate v3, the latent engine (poster_studio/generate/latent.py), in resumable stages on the CPU.

  python train/train_latent.py --stage cache   --data ../shared/data/posters            # E's features, once
  python train/train_latent.py --stage decoder --minutes 90                               # G inverts E
  python train/train_latent.py --stage prior   --minutes 40                               # flow matching over z
  python train/train_latent.py --stage export  --out checkpoints/generator-latent         # one checkpoint folder

Stages (state under --work, default runs/latent; each reruns where it stopped):
  cache    the training and val posters at 160x240 as uint8 (data.poster_cache) and the frozen EfficientNet-Lite1
           stride-16 features of each training poster and of its mirror image, fp16 (features_train.safetensors,
           ~0.9 GB), then the channel PCA (projection.safetensors).
  decoder  LatentDecoder on L1 + a perceptual loss on E's own stride-4 and stride-8 features + the feature cycle
           ||P(E(G(z))) - z||^2 at stride 16, with noise on z; EMA weights; reconstructions of fixed val posters and a
           loss plot every --sample-every steps. --minutes is the total wall clock across reruns. No VGG-19 in the
           loss: VGG-19 is the second judge's network (the genre probe and the vgg_* metrics) and stays out of it.
  prior    LatentPrior (rectified flow, classifier-free guidance dropout) on the cached latents with their genre
           labels; sample grids decoded by the current decoder.
  export   projection + EMA decoder + EMA prior as one LatentGenerator checkpoint with its card; the novelty
           threshold (generate/novelty.py) measured on val posters goes into its config.
  evaluate the ablation: --n posters per genre from each prior (flow matching with and without classifier-free
           guidance, a per-genre Gaussian mixture, the instant GAN's posters encoded by E), all decoded by the same
           G, and the instant GAN itself, and 'recon' (val posters through E and G: what the decoder alone keeps);
           evaluate-generator's metrics (both feature spaces, both judges), novelty rejections and seconds per
           poster, into <work>/ablation.json. --temperature and --cfg change the flow rows' sampling (name them
           with --tag).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torchvision.utils import make_grid, save_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.data import balanced_weights, default_data_dir, genre_combinations, poster_cache  # noqa: E402
from poster_studio.generate.latent import (IMAGE_SIZE, LATENT_CHANNELS, LATENT_HW, FeatureProjection, LatentDecoder, LatentGenerator,  # noqa: E402
                                           LatentPrior, LiteEncoder, MixturePrior, PRIOR_BLOCKS, PRIOR_WIDTH)
from poster_studio.training import ema_update, load_state, save_loss_plot, save_state  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("unpack", "cache", "decoder", "decoder-adv", "prior", "export", "evaluate"),
                   required=True)
    p.add_argument("--data", default=str(default_data_dir()))
    p.add_argument("--work", default=str(ROOT / "runs" / "latent"))
    p.add_argument("--out", default=str(ROOT / "checkpoints" / "generator-latent"))
    p.add_argument("--latent-channels", type=int, default=LATENT_CHANNELS)
    p.add_argument("--minutes", type=float, default=60.0, help="total wall clock of this stage across reruns")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this total step count too (tests)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--noise", type=float, default=0.2, help="decoder: max std of the noise added to z")
    p.add_argument("--w-perceptual", type=float, default=0.5)
    p.add_argument("--w-cycle", type=float, default=0.2)
    p.add_argument("--w-adv", type=float, default=0.1, help="decoder-adv: weight of the projected critic's hinge loss")
    p.add_argument("--d-lr", type=float, default=2e-4, help="decoder-adv: the critic's learning rate")
    p.add_argument("--prior-share", type=float, default=0.5,
                   help="decoder-adv: prior samples per reconstruction in a batch (critic + cycle only)")
    p.add_argument("--bank", type=int, default=3000, help="decoder-adv: prior samples drawn once, in runs/")
    p.add_argument("--decoder-run", default="decoder",
                   help="export/prior: which decoder run's EMA weights to use (decoder or decoder-adv)")
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-images", type=int, default=None, help="first N posters only (tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preferred", action="store_true",
                   help="export: mark the engine as the app's default (only once it beats the instant GAN under the "
                        "VGG-19 probe, the judge that never took part)")
    p.add_argument("--n", type=int, default=100, help="evaluate: posters per genre and variant")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), help="evaluate: which rows")
    p.add_argument("--tag", default="", help="evaluate: appended to the rows' names (e.g. +adv for a new decoder)")
    p.add_argument("--guidance-steps", type=int, default=10, help="evaluate: classifier-guidance steps (flow-guided)")
    p.add_argument("--n-guided", type=int, default=20, help="evaluate: posters per genre of the flow-guided row")
    p.add_argument("--temperature", type=float, default=1.0, help="evaluate: scale of the prior's noise (flow rows)")
    p.add_argument("--sample-steps", type=int, default=None,
                   help="evaluate: the prior's ODE steps of the flow rows (default: the checkpoint's)")
    p.add_argument("--cfg", type=float, default=None,
                   help="evaluate: classifier-free guidance scale of the flow rows (default: the checkpoint's)")
    p.add_argument("--no-copy-check", action="store_true",
                   help="evaluate: skip the VGG-19 copy check (its training-poster features take minutes the first time)")
    p.add_argument("--no-repel", action="store_true",
                   help="evaluate: classifier guidance without the novelty repulsion (the ablation row before it)")
    p.add_argument("--prior-run", default="prior", help="prior / export: the run folder of the prior under --work")
    p.add_argument("--prior-width", type=int, default=PRIOR_WIDTH, help="prior / export: the U-Net's first width")
    p.add_argument("--prior-blocks", type=int, nargs=2, default=list(PRIOR_BLOCKS),
                   help="prior / export: residual blocks at 15x10 and at 8x5")
    p.add_argument("--prior-init", default=None,
                   help="prior: EMA weights (safetensors) that a new prior run starts from, e.g. the shipped prior's")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ unpack
def unpack(args) -> None:
    """The shipped checkpoint (--out) back into --work: the PCA projection, the decoder's weights as the
    --decoder-run run's EMA and the prior's as the --prior-run run's EMA, so that a machine whose runs/ is gone
    continues from what ships (cache then keeps the shipped projection instead of fitting a new one, and a new
    prior run can start from the shipped prior with --prior-init)."""
    work = Path(args.work)
    state = load_file(str(Path(args.out) / "model.safetensors"))
    parts = {f"projection_{args.latent_channels}.safetensors": "projection.",
             f"{args.decoder_run}/ema.safetensors": "decoder.", f"{args.prior_run}/ema.safetensors": "prior."}
    for name, prefix in parts.items():
        path = work / name
        if path.is_file():
            print(f"kept {path}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k[len(prefix):]: v.contiguous() for k, v in state.items() if k.startswith(prefix)}, str(path))
        print(f"wrote {path}")


# ------------------------------------------------------------------------------------------------ cache
def build_cache(args) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    feats_path = work / "features_train.safetensors"
    if not feats_path.is_file():
        enc = LiteEncoder().to(memory_format=torch.channels_last)
        for split in ("train", "val"):
            cache = poster_cache(args.data, work, split, max_images=args.max_images, size=IMAGE_SIZE)
            images = cache["images"]
            out = {"labels": cache["labels"]}
            views = ("plain", "flip") if split == "train" else ("plain",)
            for view in views:
                chunks = []
                t0 = time.time()
                for i in range(0, len(images), 64):
                    x = images[i:i + 64].float().div(255)
                    if view == "flip":
                        x = x.flip(3)
                    with torch.no_grad():
                        chunks.append(enc(x.contiguous(memory_format=torch.channels_last)).half().contiguous())
                    if i % 1280 == 0:
                        print(f"{split} {view} {i}/{len(images)} {time.time() - t0:.0f}s", flush=True)
                out[view] = torch.cat(chunks)
            tmp = work / f"features_{split}.safetensors.tmp"
            save_file(out, str(tmp))
            tmp.replace(work / f"features_{split}.safetensors")
    proj_path = work / f"projection_{args.latent_channels}.safetensors"
    if not proj_path.is_file():
        feats = load_file(str(feats_path))
        proj = FeatureProjection(args.latent_channels).fit(torch.cat([feats["plain"], feats["flip"]]))
        save_file(proj.state_dict(), str(proj_path))
        print(f"PCA {args.latent_channels} of 112 channels keeps {float(proj.explained):.3f} of the variance")


def load_latents(args, split: str = "train") -> tuple[FeatureProjection, dict]:
    work = Path(args.work)
    proj = FeatureProjection(args.latent_channels)
    proj.load_state_dict(load_file(str(work / f"projection_{args.latent_channels}.safetensors")))
    feats = load_file(str(work / f"features_{split}.safetensors"))
    return proj, feats


# ------------------------------------------------------------------------------------------------ shared loop
class Loop:
    """Resumable training of one module with an EMA copy: state, wall clock, history, plots."""

    def __init__(self, args, name: str, model: torch.nn.Module, keys: tuple[str, ...],
                 init_from: Path | None = None, extra: dict | None = None):
        """`init_from`: EMA weights that start a new run (a fine-tune); `extra`: more modules and optimisers
        (a critic) whose state is saved and resumed with the model's."""
        self.args, self.name, self.keys = args, name, keys
        self.dir = Path(args.work) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.model = model
        self.extra = dict(extra or {})
        self.step, self.seconds = 0, 0.0
        self.history: dict = {"step": [], **{k: [] for k in keys}}
        self.state_path = self.dir / "state.safetensors"
        st = load_state(self.state_path) if self.state_path.is_file() else None
        if st is None and init_from is not None:
            model.load_state_dict(load_file(str(init_from)))
            print(f"{name} starts from {init_from}", flush=True)
        self.ema = copy.deepcopy(model).requires_grad_(False)
        self.opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
        if st is not None:
            model.load_state_dict(st["model"])
            self.ema.load_state_dict(st["ema"])
            self.opt.load_state_dict(st["opt"])
            for k, obj in self.extra.items():
                obj.load_state_dict(st["extra"][k])
            self.step, self.seconds = int(st["step"]), float(st["seconds"])
            self.history = {k: list(v) for k, v in st["history"].items()}
            print(f"resumed {name} at step {self.step} ({self.seconds / 60:.1f} min)", flush=True)

    def save(self) -> None:
        save_state(self.state_path, {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                                     "opt": self.opt.state_dict(), "step": self.step, "seconds": self.seconds,
                                     "batch": self.args.batch, "history": self.history,
                                     "extra": {k: obj.state_dict() for k, obj in self.extra.items()}})
        save_file({k: v.contiguous() for k, v in self.ema.state_dict().items()}, str(self.dir / "ema.safetensors"))

    def run(self, step_fn, sample_fn) -> None:
        budget = self.args.minutes * 60
        last = time.time()
        ema_decay = self.args.ema
        while self.seconds < budget and (self.args.max_steps is None or self.step < self.args.max_steps):
            losses = step_fn(self.step)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            ema_update(self.ema, self.model, min(ema_decay, (1 + self.step) / (10 + self.step)))
            self.step += 1
            now = time.time()
            self.seconds += now - last
            last = now
            self.history["step"].append(self.step)
            for k in self.keys:
                self.history[k].append(float(losses[k]))
            if self.step % 50 == 0:
                rate = self.step * self.args.batch / max(self.seconds, 1e-6)
                print(f"{self.name} step {self.step} {self.seconds / 60:.1f} min {rate:.1f} img/s "
                      + " ".join(f"{k} {sum(self.history[k][-50:]) / 50:.4f}" for k in self.keys), flush=True)
            if self.step % self.args.save_every == 0:
                self.save()
            if self.step % self.args.sample_every == 0:
                sample_fn(self.step)
                save_loss_plot(self.history, self.dir / "losses.png", self.keys, f"{self.name} losses")
                last = time.time()  # sampling is not training time
        self.save()
        sample_fn(self.step)
        save_loss_plot(self.history, self.dir / "losses.png", self.keys, f"{self.name} losses")
        print(f"{self.name} done: step {self.step}, {self.seconds / 60:.1f} min", flush=True)


def save_grid(images: torch.Tensor, folder: Path, name: str, step: int) -> None:
    """A make_grid sheet as <name>_<step>.png and <name>_latest.png."""
    grid = make_grid(images, nrow=8, padding=2)
    save_image(grid, folder / f"{name}_{step:06d}.png")
    save_image(grid, folder / f"{name}_latest.png")


# ------------------------------------------------------------------------------------------------ decoder
def poster_batch(images: torch.Tensor, feats: dict, proj: FeatureProjection, batch: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random batch of training posters, half of them mirrored: (indices, RGB in [0, 1] channels-last, latents
    of the same view from the cached features)."""
    idx = torch.randint(0, len(images), (batch,), generator=gen)
    flip = torch.rand(batch, generator=gen) < 0.5
    h = torch.where(flip[:, None, None, None], feats["flip"][idx], feats["plain"][idx]).float()
    x = images[idx].float().div(255)
    x = torch.where(flip[:, None, None, None], x.flip(3), x).contiguous(memory_format=torch.channels_last)
    return idx, x, proj.encode(h)


def train_decoder(args) -> None:
    torch.manual_seed(args.seed)
    work = Path(args.work)
    proj, feats = load_latents(args)
    images = poster_cache(args.data, work, "train", max_images=args.max_images, size=IMAGE_SIZE)["images"]
    val_images = poster_cache(args.data, work, "val", max_images=args.max_images, size=IMAGE_SIZE)["images"]
    val_feats = load_file(str(work / "features_val.safetensors"))["plain"]
    dec = LatentDecoder(args.latent_channels).to(memory_format=torch.channels_last)  # the shipped sizes (latent.py)
    loop = Loop(args, "decoder", dec, ("loss", "l1", "perceptual", "cycle"))
    enc = LiteEncoder().to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(args.seed + loop.step)
    fixed = torch.linspace(0, len(val_images) - 1, 8).long()

    def perceptual(fake: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real = enc.pyramid(x, levels=2)
        return sum((f - r).abs().mean() / r.abs().mean().clamp_min(1e-6) for f, r in zip(fake, real)) / 2

    def step_fn(step: int) -> dict:
        idx, x, z = poster_batch(images, feats, proj, args.batch, gen)
        sigma = torch.rand(args.batch, 1, 1, 1, generator=gen) * args.noise
        y = dec((z + sigma * torch.randn(z.shape, generator=gen)).contiguous(memory_format=torch.channels_last))
        l1 = (y - x).abs().mean()
        fake = enc.pyramid(y.contiguous(memory_format=torch.channels_last))
        lp = perceptual(fake[:2], x)
        lc = F.mse_loss(proj.encode(fake[2]), z)
        loss = l1 + args.w_perceptual * lp + args.w_cycle * lc
        loss.backward()
        return {"loss": loss.item(), "l1": l1.item(), "perceptual": lp.item(), "cycle": lc.item()}

    @torch.no_grad()
    def sample_fn(step: int) -> None:
        x = val_images[fixed].float().div(255)
        y = loop.ema(proj.encode(val_feats[fixed].float())).clamp(0, 1)
        save_grid(torch.cat([x, y]), loop.dir, "recon", step)

    torch.set_num_threads(args.threads)
    loop.run(step_fn, sample_fn)


# ------------------------------------------------------------------------------------------------ decoder-adv
def prior_bank(args, proj: FeatureProjection, labels: torch.Tensor) -> dict:
    """--bank latents drawn once from the prior's EMA (guidance 2, the genre sets of random training posters),
    cached in <work>/prior_bank.safetensors: what the decoder meets at run time, off the encoder's manifold."""
    path = Path(args.work) / f"prior_bank_{args.bank}.safetensors"
    if path.is_file():
        return load_file(str(path))
    prior = LatentPrior(args.latent_channels)
    prior.load_state_dict(load_file(str(Path(args.work) / "prior" / "ema.safetensors")))
    prior.eval()
    gen = torch.Generator().manual_seed(args.seed + 7)
    c = labels[torch.randint(0, len(labels), (args.bank,), generator=gen)].float()
    x0 = torch.randn(args.bank, args.latent_channels, *LATENT_HW, generator=gen)
    t0, out = time.time(), []
    for i in range(0, args.bank, 100):
        out.append(prior.sample(x0[i:i + 100], c[i:i + 100], steps=16, guidance=2.0))
        print(f"prior bank {i + 100}/{args.bank} {time.time() - t0:.0f}s", flush=True)
    bank = {"latents": torch.cat(out).contiguous(), "labels": c.contiguous()}
    save_file(bank, str(path))
    return bank


def train_decoder_adv(args) -> None:
    """The decoder fine-tuned with a projected critic (hinge loss, DiffAugment) on frozen EfficientNet-Lite1 =
    E's network, neither judge's (the classifier is Lite0, the probe VGG-19), conditioned on the genres: on
    reconstructions (with the decoder stage's losses) and on the prior's samples (critic + feature cycle only,
    they have no target), so that what the prior makes decodes to a poster rather than to a collage."""
    from poster_studio.generate.model import ProjectedCritic, diff_augment

    torch.manual_seed(args.seed)
    work = Path(args.work)
    proj, feats = load_latents(args)
    labels = feats["labels"].float()
    images = poster_cache(args.data, work, "train", max_images=args.max_images, size=IMAGE_SIZE)["images"]
    val_images = poster_cache(args.data, work, "val", max_images=args.max_images, size=IMAGE_SIZE)["images"]
    val_feats = load_file(str(work / "features_val.safetensors"))["plain"]
    bank = prior_bank(args, proj, labels) if args.prior_share > 0 else None
    n_prior = int(round(args.batch * args.prior_share))
    dec = LatentDecoder(args.latent_channels).to(memory_format=torch.channels_last)
    critic = ProjectedCritic(variant=1).to(memory_format=torch.channels_last)
    d_opt = torch.optim.Adam([p for p in critic.parameters() if p.requires_grad], lr=args.d_lr, betas=(0.5, 0.99))
    loop = Loop(args, "decoder-adv", dec, ("loss", "l1", "perceptual", "cycle", "adv", "d_loss"),
                init_from=work / "decoder" / "ema.safetensors", extra={"critic": critic, "d_opt": d_opt})
    enc = LiteEncoder().to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(args.seed + 11 + loop.step)
    fixed = torch.linspace(0, len(val_images) - 1, 8).long()
    policy = "color,translation"

    def step_fn(step: int) -> dict:
        idx, x, z = poster_batch(images, feats, proj, args.batch, gen)
        c = labels[idx]
        sigma = torch.rand(args.batch, 1, 1, 1, generator=gen) * args.noise
        z_in = z + sigma * torch.randn(z.shape, generator=gen)
        if n_prior:
            j = torch.randint(0, len(bank["latents"]), (n_prior,), generator=gen)
            z_in, c_all = torch.cat([z_in, bank["latents"][j]]), torch.cat([c, bank["labels"][j]])
        else:
            c_all = c
        y = dec(z_in.contiguous(memory_format=torch.channels_last))
        # the critic: real posters against the (detached) decodes
        d_real = critic(diff_augment(x * 2 - 1, policy, gen), c)
        d_fake = critic(diff_augment(y.detach().clamp(0, 1) * 2 - 1, policy, gen), c_all)
        d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        d_loss.backward()
        d_opt.step()
        d_opt.zero_grad(set_to_none=True)
        # the decoder
        yr = y[:args.batch]
        l1 = (yr - x).abs().mean()
        fake = enc.pyramid(y.contiguous(memory_format=torch.channels_last))
        with torch.no_grad():
            real = enc.pyramid(x, levels=2)
        lp = sum((f[:args.batch] - r).abs().mean() / r.abs().mean().clamp_min(1e-6)
                 for f, r in zip(fake[:2], real)) / 2
        lc = F.mse_loss(proj.encode(fake[2]), z_in)
        adv = -critic(diff_augment(y * 2 - 1, policy, gen), c_all).mean()
        loss = l1 + args.w_perceptual * lp + args.w_cycle * lc + args.w_adv * adv
        loss.backward()
        critic.zero_grad(set_to_none=True)  # the decoder's step must not move the critic
        return {"loss": loss.item(), "l1": l1.item(), "perceptual": lp.item(), "cycle": lc.item(),
                "adv": adv.item(), "d_loss": d_loss.item()}

    @torch.no_grad()
    def sample_fn(step: int) -> None:
        x = val_images[fixed].float().div(255)
        y = loop.ema(proj.encode(val_feats[fixed].float())).clamp(0, 1)
        rows = [x, y]
        if bank is not None:
            rows.append(loop.ema(bank["latents"][:16]).clamp(0, 1))
        save_grid(torch.cat(rows), loop.dir, "recon", step)

    torch.set_num_threads(args.threads)
    loop.run(step_fn, sample_fn)


# ------------------------------------------------------------------------------------------------ prior
def train_prior(args) -> None:
    torch.manual_seed(args.seed)
    work = Path(args.work)
    proj, feats = load_latents(args)
    labels = feats["labels"]
    with torch.no_grad():
        lat = torch.cat([torch.cat([proj.encode(feats[v][i:i + 512]) for i in range(0, len(labels), 512)])
                         for v in ("plain", "flip")])
    labels2 = torch.cat([labels, labels])
    print(f"latents {tuple(lat.shape)} mean {lat.mean():.3f} std {lat.std():.3f}", flush=True)
    prior = LatentPrior(args.latent_channels, args.prior_width, blocks=args.prior_blocks)
    print(f"prior width {args.prior_width} blocks {args.prior_blocks}: "
          f"{sum(p.numel() for p in prior.parameters()) / 1e6:.2f}M parameters", flush=True)
    loop = Loop(args, args.prior_run, prior, ("loss",), init_from=Path(args.prior_init) if args.prior_init else None)
    if args.prior_init and loop.step == 0:  # the card counts the run it continues
        (loop.dir / "init.json").write_text(json.dumps({"init_from": str(args.prior_init)}))
    gen = torch.Generator().manual_seed(args.seed + 1 + loop.step)
    dec_path = work / args.decoder_run / "ema.safetensors"

    def step_fn(step: int) -> dict:
        idx = torch.randint(0, len(lat), (args.batch,), generator=gen)
        loss = prior.loss(lat[idx], labels2[idx], generator=gen)
        loss.backward()
        return {"loss": loss.item()}

    @torch.no_grad()
    def sample_fn(step: int) -> None:
        if not dec_path.is_file():
            return
        dec = LatentDecoder(args.latent_channels)
        dec.load_state_dict(load_file(str(dec_path)))
        c = torch.eye(G.NUM_GENRES).repeat_interleave(4, 0)
        x0 = torch.randn(len(c), args.latent_channels, 15, 10, generator=torch.Generator().manual_seed(0))
        z = loop.ema.eval().sample(x0, c, steps=16, guidance=2.0)
        save_grid(dec(z).clamp(0, 1), loop.dir, "samples", step)

    torch.set_num_threads(args.threads)
    loop.run(step_fn, sample_fn)


# ------------------------------------------------------------------------------------------------ export
# the first prior run (shipped on 2026-12-01), which later prior runs continue with --prior-init
PRIOR_BEFORE = {"steps": 6400, "minutes": 23.1, "batch": 64, "images_seen": 409600}
# the runs behind the shipped decoder, for a card written where their states are gone (a new machine: runs/ is lost,
# the weights are the shipped ones)
SHIPPED_RUNS = {"decoder": {"steps": 8400, "minutes": 73.1, "batch": 8, "images_seen": 67200},
                "decoder-adv": {"steps": 4434, "minutes": 95.0, "batch": 8, "images_seen": 35472}}


def export(args) -> None:
    from poster_studio.data import read_labels

    work = Path(args.work)
    records = [r for r in read_labels(Path(args.data) / "labels.csv") if r.split == "train"]
    model = LatentGenerator(latent_channels=args.latent_channels, prior_width=args.prior_width,
                            prior_blocks=args.prior_blocks, genre_prior=genre_combinations(records))
    model.projection.load_state_dict(load_file(str(work / f"projection_{args.latent_channels}.safetensors")))
    model.decoder.load_state_dict(load_file(str(work / args.decoder_run / "ema.safetensors")))
    model.prior.load_state_dict(load_file(str(work / args.prior_run / "ema.safetensors")))
    novelty = novelty_threshold(args)
    info = {}
    runs = {"decoder": "decoder", args.decoder_run: args.decoder_run, "prior": args.prior_run}  # card key -> folder
    for key, name in runs.items():
        if not (work / name / "state.safetensors").is_file():
            info[key] = dict(SHIPPED_RUNS[name]) if name in SHIPPED_RUNS else {
                "note": "unpacked from the shipped checkpoint: its run's state is not on this machine"}
            continue
        st = load_state(work / name / "state.safetensors")
        info[key] = {"steps": int(st["step"]), "minutes": round(float(st["seconds"]) / 60, 1),
                     "batch": int(st.get("batch", args.batch)),
                     "images_seen": int(st["step"]) * int(st.get("batch", args.batch))}
        if name != key:
            info[key]["run"] = name
        init = work / name / "init.json"
        if init.is_file():  # a run that continued earlier weights: those weights' training too
            info[key]["continued"] = PRIOR_BEFORE if key == "prior" else json.loads(init.read_text())
    ablation_path = work / "ablation.json"  # --stage evaluate's rows, summarised into the card when there
    metrics = {}
    if ablation_path.is_file():
        for row, r in json.loads(ablation_path.read_text()).items():
            o = r["overall"]
            metrics[f"ablation_{row}"] = {
                "classifier_hit": round(o.get("mean_cond_acc", float("nan")), 3),
                "probe_hit": round(o.get("mean_probe_cond_acc", float("nan")), 3),
                "kid_lite0": round(o["pooled_kid"], 3), "kid_vgg19": round(o["pooled_vgg_kid"], 2),
                "diversity_lite0": round(o["pooled_diversity_ratio"], 2),
                "diversity_vgg19": round(o["pooled_vgg_diversity_ratio"], 2),
                "novelty_rejected": r["novelty"]["rejected_share"], "seconds_per_poster": r["seconds_per_poster"]}
    hub.save_checkpoint(
        model, args.out,
        description=(LatentGenerator.__doc__ or "").strip() + "\n\nGenerate v3, the latent engine: see "
        "poster_studio/generate/latent.py. The decoder shipped is the " + args.decoder_run + " run's EMA"
        + (" (fine-tuned against a projected critic on frozen EfficientNet-Lite1 features, on reconstructions and "
           "on the prior's own samples)" if args.decoder_run == "decoder-adv" else "") + ". Ablation rows: "
        "'+adv' rows use the critic-tuned decoder, the others the decoder before the critic; 'flow-guided' adds "
        "classifier-guidance steps (generate/guidance.py): the project classifier guides it, so only the VGG-19 "
        "probe (never in any loop) judges it independently. The same checkpoint drives Genre transfer's bridge "
        "engine (poster_studio/transfer/bridge.py: a picture's latent inverted under no genre, then sampled "
        "under the target genre).",
        data="The 13,149 training posters (and their mirror images) at 160x240; nothing per poster is stored.",
        training=f"train/train_latent.py, 2 CPU cores: {json.dumps(info)}; PCA keeps "
                 f"{float(model.projection.explained):.3f} of E's channel variance.",
        metrics={**metrics, "training": info, "novelty": novelty},
        config_updates={"novelty_threshold": novelty.get("threshold"), "preferred": bool(args.preferred)})
    print(f"exported {args.out}")


def novelty_threshold(args) -> dict:
    """generate/novelty.py's threshold from the val posters (with the shipped classifier's index), or {} without."""
    from poster_studio.classify import Classifier
    from poster_studio.data import spread_sample
    from poster_studio.generate.novelty import calibrate
    from poster_studio.images import load_image

    try:
        clf = Classifier.load()
    except Exception as exc:  # no classifier: the engine ships without a novelty check
        print(f"no novelty threshold: {exc}")
        return {}
    files = spread_sample(min(args.max_images or 700, 700), args.data, "val")
    return calibrate(clf, [load_image(f) for f in files])


# ------------------------------------------------------------------------------------------------ ablation
VARIANTS = ("flow", "flow-cfg1", "flow-guided", "mixture", "gan-encoded", "gan", "recon")


def evaluate(args) -> None:
    from poster_studio.classify import Classifier
    from poster_studio.generate import PosterGenerator
    from poster_studio.generate.evaluate import evaluate_generator
    from poster_studio.generate.guidance import ClassifierGuidance
    from poster_studio.generate.novelty import NoveltyCheck
    from poster_studio.images import to_pils

    work, out_root = Path(args.work), Path(args.work) / "ablation"
    latent = PosterGenerator.load(directory=args.out, novelty=False)  # raw samples: rejections are counted below
    instant = PosterGenerator.load(directory=ROOT / "checkpoints" / "generator")
    net = latent.net
    clf = Classifier.load()
    check = NoveltyCheck(clf, net.novelty_threshold or 0.0)
    # the classifier guides this row (as the service does: with the novelty repulsion unless --no-repel), so only the
    # VGG-19 probe judges it independently
    guide = ClassifierGuidance(clf, repel=None if args.no_repel else net.novelty_threshold)
    results_path = work / "ablation.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    mixture = None
    if "mixture" in args.variants:
        proj, feats = load_latents(args)
        lat = torch.cat([proj.encode(feats["plain"][i:i + 512]) for i in range(0, len(feats["labels"]), 512)])
        mixture = MixturePrior().fit(lat, feats["labels"])
    enc = LiteEncoder()
    val_of_genre = {}
    if "recon" in args.variants:
        val = poster_cache(args.data, work, "val", size=IMAGE_SIZE)
        val_of_genre = {g: val["images"][val["labels"][:, i] > 0] for i, g in enumerate(G.GENRES)}
    for variant in args.variants:
        t0, made = time.time(), []
        row_name = variant + args.tag
        n_row = args.n_guided if variant == "flow-guided" else args.n
        for gi, genre in enumerate(G.GENRES):
            folder = out_root / row_name / genre
            folder.mkdir(parents=True, exist_ok=True)
            images: list = []
            for start in range(0, n_row, 25):
                n = min(25, n_row - start)
                seed = 1000 * gi + start
                with torch.no_grad():
                    if variant in ("flow", "flow-cfg1", "flow-guided"):
                        z, gen = latent.latents(n, seed, args.temperature)
                        c = latent.conditions([genre], n, gen)
                        lat_ = net.sample_latents(z, c, steps=args.sample_steps,
                                                  guidance=1.0 if variant == "flow-cfg1" else args.cfg)
                        if variant == "flow-guided":
                            lat_ = guide(net.decode, lat_, c, args.guidance_steps, torch.Generator().manual_seed(seed))
                        images += to_pils(net.decode(lat_).clamp(0, 1))
                    elif variant == "recon":  # val posters of the genre through E and G: the decoder's ceiling
                        x = val_of_genre[genre][start:start + n].float().div(255)
                        images += to_pils(net.decode(net.projection.encode(enc(x))).clamp(0, 1))
                    elif variant == "mixture":
                        images += to_pils(net.decode(mixture.sample(gi, n, seed)).clamp(0, 1))
                    elif variant == "gan-encoded":
                        x = instant.net(*_gan_inputs(instant, genre, n, seed)) * 0.5 + 0.5
                        x = F.interpolate(x, size=(IMAGE_SIZE[1], IMAGE_SIZE[0]), mode="bilinear", antialias=True)
                        images += to_pils(net.decode(net.projection.encode(enc(x))).clamp(0, 1))
                    else:  # the instant GAN itself
                        images += instant.render(*_gan_inputs(instant, genre, n, seed))
            made += images
            for old in folder.glob("*.png"):  # evaluate_generator reads the folder: only this run's posters
                old.unlink()
            for i, im in enumerate(images):
                im.save(folder / f"{i:04d}.png")
        seconds = (time.time() - t0) / (n_row * len(G.GENRES))  # sampling and saving
        row = evaluate_generator(out_root / row_name, Path(args.data) / "labels.csv", split="val", n_per_genre=n_row,
                                 copy_check=not args.no_copy_check)  # VGG-19: the check under a network that guides nothing
        d = check.distances(made)
        row["novelty"] = {"threshold": check.threshold, "rejected_share": float((d < check.threshold).mean()),
                          "median_nn_distance": float(np.median(d))}
        row["seconds_per_poster"] = round(seconds, 3)
        if variant == "flow-guided":
            row["guidance_steps"] = args.guidance_steps
        results[row_name] = row
        results_path.write_text(json.dumps(results, indent=2))
        o = row["overall"]
        print(f"{row_name}: classifier {o.get('mean_cond_acc', float('nan')):.3f} probe "
              f"{o.get('mean_probe_cond_acc', float('nan')):.3f} KID {o['pooled_kid']:.4f} VGG-KID "
              f"{o['pooled_vgg_kid']:.3f} div {o['pooled_vgg_diversity_ratio']:.2f} novelty-rejected "
              f"{row['novelty']['rejected_share']:.3f} "
              f"(VGG-19 {row.get('vgg_copy_check', {}).get('rejected_share', float('nan')):.3f}) "
              f"{seconds:.3f} s/poster", flush=True)


def _gan_inputs(gen, genre: str, n: int, seed: int):
    z, g = gen.latents(n, seed, 0.7)
    return z, gen.conditions([genre], n, g)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    {"unpack": unpack, "cache": build_cache, "decoder": train_decoder, "decoder-adv": train_decoder_adv, "prior": train_prior,
     "export": export,
     "evaluate": evaluate}[args.stage](args)


if __name__ == "__main__":
    main()
