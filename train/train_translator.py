"""Train the Genre transfer tab's "translate" engine: unpaired poster -> poster genre translation, resumably, on
CUDA when there, else the CPU.

  python train/train_translator.py --data ../shared/data/posters --minutes 25                 # ours -> runs/translator
  python train/train_translator.py --data ../shared/data/posters --arch cyclegan --minutes 25 # the seed baseline
  python train/train_translator.py --export checkpoints/translator --metrics runs/eval/translate.json

Archs (networks in poster_studio/transfer/translate.py):
  stargan   GenreTranslator, ONE generator for all --genres: G(x, t) with the target genre t fed to AdaIN residual
            blocks; by default (--max-delta 0) G only regrades colours: a 3x4 affine colour matrix per 16x16-pixel
            cell from its features and t, plus one global matrix per genre (starts as the identity; cannot draw
            flares; the service applies the coefficients to the full-size picture). --max-delta > 0 adds a residual
            image from a decoder (the earlier design: it drew bright flares); width 16 (16-32-64 channels, the residual
            blocks at 64: G's part of a batch-8 step about 1.4 s of CPU on one core, 4.7 s at --width 32, the critic's
            0.5 s). Critic (--critic projected): generate.model.ProjectedCritic(variant=1), a projected GAN
            discriminator on frozen EfficientNet-Lite1 (neither judge's network: the classifier is Lite0, the probe
            VGG-19) with the one-hot target genre in its projection term (one projection per genre), hinge loss. Each
            step: --batch inputs x, posters of every genre (rare genres drawn as often as common ones) with source s =
            one of their genres, plus --photo-share of crops of the content photos (--content); a random other target t;
            D: training posters of genre t are real, G(x, t) fake, both under t; G: adversarial + cycle
            --lambda-cyc x |G(G(x, t), s) - x| (default 1: a genre look is not invertible, and at 10 the
            translator stayed the identity) + identity |G(x, s) - x| on the posters (a photo has no genre: its
            cycle goes back through a random other genre, no identity term) (+ --lambda-content x VGG-19 distance to x, off by default).
            DiffAugment on all D sees; the EMA of G is shipped. --lambda-cls (default 1): StarGAN's domain
            classification term: a linear genre head on the critic's pooled frozen Lite1 features, fit first on the
            reals' frozen features (full batch; from chance it gave G noise for hundreds of steps), then trained on
            with D (cross-entropy on t); G is trained so that its fakes read as t (neither judge's network: the
            classifier and the probe stay out of the loop). Default DiffAugment for this task: translation only
            (colour jitter hides the very cue that tells genres apart). --critic patch: the earlier 70x70 PatchGAN
            (spectral norm, one patch map per genre).
  cyclegan  the CycleGAN recipe for one pair (--pair, default Comedy Horror_Thriller): two ResNet generators, two
            70x70 PatchGANs with instance norm, LSGAN, cycle 10 + identity 5, Adam(2e-4, 0.5), batch 1, a pool of
            the last 50 fakes for D. Same script, same data, same budget.

Domains (the real posters D sees): a genre's training posters with exactly one genre label; a genre with fewer
than --min-domain of them (Romance has 47, Animation 95) also takes the posters labelled with it and one other
genre. Data: the uint8 poster cache at --size (128x192) that train_generator.py uses (cache/gan,
poster_studio.data.poster_cache), random flips; the content photos' crops are cut once at start (in memory,
seeded). The critic's frozen backbone is not cached per poster: D sees every real through DiffAugment, as the
fakes, and a real's pass through the frozen network costs little beside G's. The log says every --log-every steps
(and the final JSON line, and the model card) how many images the run has seen.

Resumable: the state (networks, EMA, Adam states, step, training seconds, loss history, RNG, CycleGAN pool) is
saved atomically to <out>/state.safetensors every --save-every steps and on Ctrl-C / SIGTERM; rerun the same command
to continue. --minutes is the training budget across resumes (--steps for smoke tests); --session-minutes ends
this invocation early (rerun the same command for the next chunk). The learning rate decays linearly to 0 over the
last --decay share of the budget. Every --sample-every steps: <out>/samples/step_N.png and samples_latest.png (rows:
fixed val posters, columns: the input, then each target genre; they show posters: never commit them) and
<out>/loss.png; <out>/checkpoint every --checkpoint-every steps and at the end. --export DIR writes the checkpoint
from the saved state with a model card holding evaluate-translate results (--metrics, this model's first).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.data import balanced_weights, default_data_dir, poster_cache, read_labels  # noqa: E402
from poster_studio.device import default_device  # noqa: E402
from poster_studio.errors import InvalidArgumentError  # noqa: E402
from poster_studio.generate.model import ProjectedCritic, diff_augment  # noqa: E402
from poster_studio.images import fit_image, load_image, to_tensor  # noqa: E402
from poster_studio.training import ema_update, load_state, save_loss_plot, save_state  # noqa: E402
from poster_studio.transfer.translate import CycleGANPair, GenreTranslator, PatchDiscriminator  # noqa: E402

LOSS_KEYS = ("d_loss", "g_adv", "cycle", "identity")
TRAIN_ARGS = ("genres", "size", "width", "d_width", "n_res", "minutes", "batch", "lr_g", "lr_d", "beta1", "beta2", "decay",
              "loss", "lambda_cyc", "lambda_id", "lambda_content", "lambda_cls", "diffaug", "min_domain", "critic",
              "photo_share", "photo_bank", "max_delta", "no_grade", "grade_cell", "grade_bins", "grade_bound",
              "lambda_clip", "lambda_tv")  # what the state and card record


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()), help="poster folder (images/, labels.csv)")
    p.add_argument("--arch", choices=("stargan", "cyclegan"), default="stargan")
    p.add_argument("--out", default=None, help="run folder (default runs/translator, runs/translator-cyclegan)")
    p.add_argument("--cache", default=str(ROOT / "cache" / "gan"), help="poster cache folder (shared with the GAN)")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N training posters (tests)")
    p.add_argument("--size", default="128x192", help="native WxH, multiples of 4 (the poster cache's size)")
    p.add_argument("--genres", nargs="+", default=list(G.GENRES), help="stargan: the genres served (default all 7)")
    p.add_argument("--pair", nargs=2, default=["Comedy", "Horror_Thriller"], help="cyclegan: the two genres")
    p.add_argument("--content", default=os.environ.get("POSTER_STUDIO_CONTENT") or str(ROOT.parent / "shared" / "data"
                                                                                       / "content"),
                   help="stargan: folder of content photos whose crops join the inputs ('none': posters only)")
    p.add_argument("--photo-share", type=float, default=0.125, help="stargan: share of each batch that is photo crops")
    p.add_argument("--crops", type=int, default=48, help="stargan: crops cut from each content photo")
    p.add_argument("--critic", choices=("projected", "patch"), default="projected",
                   help="stargan: ProjectedCritic on frozen EfficientNet-Lite1, or the 70x70 PatchGAN")
    p.add_argument("--min-domain", type=int, default=200,
                   help="a genre with fewer single-genre posters also takes its two-genre posters (0 = never)")
    p.add_argument("--minutes", type=float, default=None, help="training budget across resumes")
    p.add_argument("--steps", type=int, default=None, help="stop at this step (smoke tests)")
    p.add_argument("--session-minutes", type=float, default=None, help="end this invocation after N minutes")
    p.add_argument("--batch", type=int, default=None, help="default 8 (stargan), 1 (cyclegan, the recipe)")
    p.add_argument("--lr-g", type=float, default=None, help="default 1e-4 (stargan), 2e-4 (cyclegan)")
    p.add_argument("--lr-d", type=float, default=None, help="default 2e-4")
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--decay", type=float, default=0.5, help="share of the budget over which the lr decays to 0")
    p.add_argument("--loss", choices=("lsgan", "hinge"), default=None, help="default hinge (stargan), lsgan (cyclegan)")
    p.add_argument("--lambda-cyc", type=float, default=None,
                   help="cycle loss weight: default 1 (stargan: at 10 the grade collapsed to the identity), 10 (cyclegan)")
    p.add_argument("--lambda-id", type=float, default=None, help="default 1 (stargan), 5 (cyclegan: half of cycle)")
    p.add_argument("--lambda-content", type=float, default=0.0, help="stargan: VGG-19 distance of G(x, t) to x")
    p.add_argument("--lambda-cls", type=float, default=None,
                   help="stargan + projected critic: StarGAN's domain-classification loss, a linear genre head on the "
                        "critic's frozen Lite1 features (trained on the reals; G: its fakes must read as the target "
                        "genre); default 1 (0 = off)")
    p.add_argument("--diffaug", default=None, help="DiffAugment policy for D's inputs (default translation for "
                   "stargan: colour jitter would hide the genre cue; none for cyclegan)")
    p.add_argument("--width", type=int, default=None, help="generator width (first conv's channels; default 16 "
                   "(stargan), 64 (cyclegan))")
    p.add_argument("--d-width", type=int, default=64,
                   help="critic width (the projected critic's head channels, the PatchGAN's first conv)")
    p.add_argument("--n-res", type=int, default=6, help="residual blocks")
    p.add_argument("--max-delta", type=float, default=0.0,
                   help="stargan: range of the decoder's residual image (0 = none: G only regrades colours, per cell "
                        "of 16x16 pixels, which cannot draw the bright flares a residual drew; 2 = any colour)")
    p.add_argument("--grade-cell", type=int, default=4, help="stargan: grade cell size in 4-pixel steps (4 = 16x16 "
                   "pixels of the native size; larger = a smoother grade, fewer local colour patches)")
    p.add_argument("--grade-bins", type=int, default=1, help="stargan: luma bins per grade cell (> 1: a tone "
                   "curve per cell, HDRNet's bilateral grid; 1 = one affine matrix per cell)")
    p.add_argument("--grade-bound", type=float, default=0.0, help="stargan: keep every grade coefficient in "
                   "(-B, B) by a tanh (0 = unbounded)")
    p.add_argument("--lambda-clip", type=float, default=0.0, help="stargan: weight of the mean overflow of G(x, t) "
                   "beyond [-1, 1] before its clamp (clipped, garish colours)")
    p.add_argument("--lambda-tv", type=float, default=0.0, help="stargan: weight of the grade coefficients' "
                   "total variation between neighbouring cells (local colour patches)")
    p.add_argument("--no-grade", action="store_true", help="stargan: without the colour-grade path (then give "
                   "--max-delta > 0)")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--pool", type=int, default=50, help="cyclegan: fakes kept for D")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=50, help="a log line (speed, images seen) every N steps")
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-tqdm", action="store_true")
    p.add_argument("--export", default=None, help="only write the checkpoint from the saved state to this folder")
    p.add_argument("--from-checkpoint", default=None, metavar="DIR",
                   help="with --export: ship this checkpoint folder of the run (an earlier one, e.g. a copy of "
                        "<out>/checkpoint taken at step N) instead of the state's last EMA; its training.json says "
                        "how it was trained")
    p.add_argument("--card-note", default=None, help="with --export: a sentence added to the card's training section "
                   "(e.g. a loss weight changed at a resume)")
    p.add_argument("--metrics", nargs="*", default=None,
                   help="with --export: evaluate-translate JSON files (this model's first, then baselines)")
    args = p.parse_args(argv)
    stargan = args.arch == "stargan"
    args.out = args.out or str(ROOT / "runs" / ("translator" if stargan else "translator-cyclegan"))
    try:
        args.genres = [G.parse_genre(g) for g in (args.genres if stargan else args.pair)]
    except InvalidArgumentError as exc:
        p.error(str(exc))
    if len(set(args.genres)) < 2:
        p.error("at least two different genres")
    try:
        args.size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(args.size) == 2 and all(v >= 16 and v % 4 == 0 for v in args.size)
    except (ValueError, AssertionError):
        p.error(f"--size must be WxH, multiples of 4 of at least 16, got {args.size!r}")
    args.batch = args.batch or (8 if stargan else 1)
    args.width = args.width or (16 if stargan else 64)
    args.loss = args.loss or ("hinge" if stargan else "lsgan")
    if not stargan:
        args.critic, args.photo_share = "patch", 0.0
    if args.content.lower() in ("", "none"):
        args.content = None
    args.lr_g = args.lr_g or (1e-4 if stargan else 2e-4)
    args.lr_d = args.lr_d or 2e-4
    args.lambda_cyc = (1.0 if stargan else 10.0) if args.lambda_cyc is None else args.lambda_cyc
    args.lambda_id = (1.0 if stargan else 0.5 * args.lambda_cyc) if args.lambda_id is None else args.lambda_id
    if args.lambda_cls is None:
        args.lambda_cls = 1.0 if stargan and args.critic == "projected" else 0.0
    if args.lambda_cls and (not stargan or args.critic != "projected"):
        p.error("--lambda-cls needs --arch stargan with --critic projected")
    args.diffaug = ("translation" if stargan else "") if args.diffaug is None else args.diffaug
    if not args.export and args.minutes is None and args.steps is None:
        p.error("give --minutes (training budget) or --steps")
    return args


# ----------------------------------------------------------------------------------------------- data
def make_domains(labels: torch.Tensor, genres: list[str], min_domain: int):
    """(rows of the cache, domain index of each row, {genre: posters}): single-genre posters per genre, topped up
    with its two-genre posters when there are fewer than `min_domain`."""
    n_labels = labels.sum(1)
    rows, doms, sizes = [], [], {}
    for d, g in enumerate(genres):
        has = labels[:, G.GENRES.index(g)] > 0
        r = (has & (n_labels == 1)).nonzero().flatten()
        if len(r) < min_domain:
            r = (has & (n_labels <= 2)).nonzero().flatten()
        if not len(r):
            raise SystemExit(f"no training posters of {g}")
        rows.append(r)
        doms.append(torch.full((len(r),), d))
        sizes[g] = len(r)
    return torch.cat(rows), torch.cat(doms), sizes


def photo_crops(folder, n_per: int, size, seed: int) -> torch.Tensor:
    """`n_per` random 2:3 crops (a third of the largest 2:3 window's area to all of it) of each picture in `folder`,
    resized to size (W, H), uint8 (N, 3, H, W); empty when there are none. Seeded: the same crops on every resume."""
    import numpy as np
    from PIL import Image

    files = sorted(f for f in Path(folder).glob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    gen = torch.Generator().manual_seed(seed)
    out = []
    for f in files:
        img = load_image(f)
        cw = min(img.width, img.height * size[0] / size[1])
        for _ in range(n_per):
            scale = (1 / 3 + torch.rand((), generator=gen).item() * 2 / 3) ** 0.5
            w, h = cw * scale, cw * scale * size[1] / size[0]
            x0 = torch.rand((), generator=gen).item() * (img.width - w)
            y0 = torch.rand((), generator=gen).item() * (img.height - h)
            crop = img.resize(size, Image.Resampling.BICUBIC, box=(x0, y0, x0 + w, y0 + h))
            out.append(torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1))
    return torch.stack(out) if out else torch.empty(0, 3, size[1], size[0], dtype=torch.uint8)


@torch.no_grad()
def _pooled_features(critic, images_u8: torch.Tensor, dev, batch: int = 64) -> torch.Tensor:
    return torch.cat([critic.pooled((images_u8[i: i + batch].float() / 127.5 - 1).to(dev)).cpu()
                      for i in range(0, len(images_u8), batch)])


def fit_genre_head(critic, images_u8: torch.Tensor, domains: torch.Tensor, dev, iters: int = 300) -> float:
    """Fit the critic's linear genre head (before the first step) on the frozen pooled features of the domains'
    real posters: full batch, Adam, class-balanced cross-entropy. Without it the head starts at chance and G's
    classification gradient is noise for hundreds of steps. Returns the final (balanced) loss."""
    feats = _pooled_features(critic, images_u8, dev).to(dev)
    y = domains.to(dev)
    k = critic.genre_head.out_features
    weight = len(y) / (k * torch.bincount(y, minlength=k).clamp_min(1).float())
    opt = torch.optim.Adam(critic.genre_head.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(iters):
        loss = F.cross_entropy(critic.genre_head(feats), y, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.item()


def poster_batch(images_u8: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """uint8 cached posters -> float [-1, 1], random horizontal flips."""
    x = images_u8.float() / 127.5 - 1.0
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def sample_inputs(data: Path, genres: list[str], images, rows, doms, per: int, size, content=None) -> torch.Tensor:
    """The sample grid's rows: `per` val posters of each genre (single-genre first, by id), [-1, 1]; training
    posters of the domain when there are no val posters; then the first two content photos, centre-fitted."""
    recs = sorted((r for r in read_labels(data / "labels.csv") if r.split == "val"), key=lambda r: r.id)
    out = []
    for d, g in enumerate(genres):
        picks = ([r for r in recs if r.genres == (g,)] + [r for r in recs if g in r.genres and len(r.genres) > 1])[:per]
        xs = [to_tensor(fit_image(load_image(data / "images" / f"{r.id}.jpg"), size)) * 2 - 1 for r in picks]
        out += xs or list(images[rows[doms == d][:per]].float() / 127.5 - 1.0)
    if content:
        files = sorted(f for f in Path(content).glob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        out += [to_tensor(fit_image(load_image(f), size)) * 2 - 1 for f in files[:2]]
    return torch.stack(out)


@torch.no_grad()
def save_samples(net, inputs: torch.Tensor, path: Path) -> None:
    """Grid: one row per input: the input, then its translation to each genre the net serves."""
    from torchvision.utils import make_grid, save_image

    was = net.training
    net.eval()
    dev = next(net.parameters()).device
    x = inputs.to(dev)
    outs = [net(x, torch.full((len(x),), d, device=dev)) for d in range(len(net.genres))]
    net.train(was)
    grid = torch.stack([x, *outs], 1).flatten(0, 1).cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid((grid + 1) / 2, nrow=1 + len(outs), padding=2), str(path))


# ----------------------------------------------------------------------------------------------- losses, steps
def adversarial(out: torch.Tensor, real: bool, loss: str, generator: bool = False) -> torch.Tensor:
    """LSGAN (targets 1 / 0) or hinge; `generator`: the generator's side (hinge: -D)."""
    if loss == "lsgan":
        return F.mse_loss(out, torch.full_like(out, 1.0 if real else 0.0))
    if generator:
        return -out.mean()
    return F.relu(1 - out).mean() if real else F.relu(1 + out).mean()


class ImagePool:
    """CycleGAN's history of fakes: D sees, half the time, a fake from earlier steps instead of the new one."""

    def __init__(self, size: int, images=None):
        self.size, self.images = size, list(images) if images is not None else []

    def query(self, fakes: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        out = []
        for f in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(f.clone())
                out.append(f)
            elif torch.rand((), generator=gen) < 0.5:
                i = int(torch.randint(len(self.images), (), generator=gen))
                out.append(self.images[i].clone())
                self.images[i] = f.clone()
            else:
                out.append(f)
        return torch.stack(out)

    def tensor(self, like: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.images) if self.images else like.new_zeros((0, *like.shape[1:]))


def stargan_step(nets, opts, batch, args, gen, feature_distance=None) -> dict:
    """One D and one G update of the multi-genre translator; the losses as floats. batch: inputs x (the posters
    first, then `n_ph` photo crops), their source genres s, targets t, and real posters of the genres t."""
    G_net, D_net = nets
    opt_g, opt_d = opts
    x, s, t, real, n_ph = batch
    n, n_posters = len(x), len(x) - n_ph
    aug = lambda im: diff_augment(im, args.diffaug, gen)  # noqa: E731

    def cond(d):  # the projected critic takes the genre as a one-hot condition, the PatchGAN as its map's index
        return F.one_hot(d, len(args.genres)).float() if args.critic == "projected" else d

    raw = getattr(args, "lambda_clip", 0.0) or getattr(args, "lambda_tv", 0.0)
    if args.lambda_id and n_posters:  # one generator pass for G(x, t) and, on the posters, G(x, s)
        xs, ts = torch.cat([x, x[:n_posters]]), torch.cat([t, s[:n_posters]])
    else:
        xs, ts = x, t
    if raw:  # the result before its clamp and the grade's coefficients, for the overflow and smoothness terms
        out, coef = G_net(xs, ts, raw=True)
        overflow = (out[:n].abs() - 1).clamp(min=0).mean()
        tv = (coef[:n].diff(dim=-1).abs().mean() + coef[:n].diff(dim=-2).abs().mean()) if coef is not None \
            else overflow.new_zeros(())
        out = out.clamp(-1, 1)
    else:
        out = G_net(xs, ts)
    fake, same = out[:n], (out[n:] if len(out) > n else None)

    cls = getattr(args, "lambda_cls", 0.0)
    if cls:  # StarGAN's auxiliary classifier: a linear genre head on the critic's frozen features, fit on the reals
        d_out, genre_logits = D_net(aug(torch.cat([real, fake.detach()])), cond(torch.cat([t, t])), with_genres=True)
        cls_real = F.cross_entropy(genre_logits[:n], t)
    else:
        d_out, cls_real = D_net(aug(torch.cat([real, fake.detach()])), cond(torch.cat([t, t]))), None
    d_loss = adversarial(d_out[:n], True, args.loss) + adversarial(d_out[n:], False, args.loss)
    opt_d.zero_grad(set_to_none=True)
    (d_loss + cls * cls_real if cls else d_loss).backward()
    opt_d.step()

    d_params = [p for group in opt_d.param_groups for p in group["params"]]  # the trainable ones: never the backbone
    for p in d_params:
        p.requires_grad_(False)
    if cls:
        g_out, genre_logits = D_net(aug(fake), cond(t), with_genres=True)
        cls_fake = F.cross_entropy(genre_logits, t)  # the fakes must read as their target genre
    else:
        g_out, cls_fake = D_net(aug(fake), cond(t)), None
    g_adv = adversarial(g_out, True, args.loss, generator=True)
    for p in d_params:
        p.requires_grad_(True)
    cyc = (G_net(fake, s) - x).abs().mean()
    idt = (same - x[:n_posters]).abs().mean() if same is not None else x.new_zeros(())
    g_loss = g_adv + args.lambda_cyc * cyc + args.lambda_id * idt
    losses = {"d_loss": d_loss.item(), "g_adv": g_adv.item(), "cycle": cyc.item(), "identity": idt.item()}
    if cls:
        g_loss = g_loss + cls * cls_fake
        losses.update(cls_real=cls_real.item(), cls_fake=cls_fake.item())
    if raw:
        g_loss = g_loss + getattr(args, "lambda_clip", 0.0) * overflow + getattr(args, "lambda_tv", 0.0) * tv
        losses.update(overflow=overflow.item(), tv=tv.item())
    if args.lambda_content:
        content = feature_distance((fake + 1) / 2, (x + 1) / 2).mean()
        g_loss = g_loss + args.lambda_content * content
        losses["content"] = content.item()
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return losses


def cyclegan_step(nets, opts, batch, args, gen, pools) -> dict:
    """The CycleGAN recipe's update: G_AB and G_BA together, then both discriminators on pooled fakes."""
    G_net, D_net = nets
    opt_g, opt_d = opts
    xa, xb = batch
    to_a, to_b = G_net.nets
    aug = lambda im: diff_augment(im, args.diffaug, gen)  # noqa: E731
    fake_b, fake_a = to_b(xa), to_a(xb)
    D_net.requires_grad_(False)
    g_adv = (adversarial(D_net[1](aug(fake_b)), True, args.loss, generator=True)
             + adversarial(D_net[0](aug(fake_a)), True, args.loss, generator=True))
    D_net.requires_grad_(True)
    cyc = (to_a(fake_b) - xa).abs().mean() + (to_b(fake_a) - xb).abs().mean()
    idt = (to_b(xb) - xb).abs().mean() + (to_a(xa) - xa).abs().mean() if args.lambda_id else xa.new_zeros(())
    g_loss = g_adv + args.lambda_cyc * cyc + args.lambda_id * idt
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()

    pa, pb = pools[0].query(fake_a, gen), pools[1].query(fake_b, gen)
    d_loss = sum(0.5 * (adversarial(D(aug(real)), True, args.loss) + adversarial(D(aug(fake)), False, args.loss))
                 for D, real, fake in ((D_net[0], xa, pa), (D_net[1], xb, pb)))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    return {"d_loss": d_loss.item(), "g_adv": g_adv.item(), "cycle": cyc.item(), "identity": idt.item()}


def make_models(args):
    if args.arch == "stargan":
        critic = (ProjectedCritic(len(args.genres), head_channels=args.d_width, variant=1, seed=args.seed,
                                  genre_head=bool(getattr(args, "lambda_cls", 0.0)))
                  if args.critic == "projected" else PatchDiscriminator(len(args.genres), args.d_width, "spectral"))
        return GenreTranslator(genres=args.genres, size=args.size, width=args.width, n_res=args.n_res,
                               max_delta=getattr(args, "max_delta", 2.0),
                               grade=not getattr(args, "no_grade", True),
                               grade_cell=getattr(args, "grade_cell", 4), grade_bins=getattr(args, "grade_bins", 1),
                               grade_bound=getattr(args, "grade_bound", 0.0)), critic
    return (CycleGANPair(genres=args.genres, size=args.size, width=args.width, n_res=args.n_res),
            nn.ModuleList([PatchDiscriminator(1, args.d_width, "instance") for _ in range(2)]))


def images_seen(args, step: int) -> str:
    """What `step` steps have shown the networks, in words (the log, the final line, the model card)."""
    if args.arch == "cyclegan":
        return f"{2 * step * args.batch} posters seen ({step * args.batch} of each genre)"
    photos = n_photos(args)
    return (f"{step * args.batch} inputs translated ({step * (args.batch - photos)} posters, {step * photos} photo "
            f"crops) and {step * args.batch} real posters judged")


def n_photos(args) -> int:
    return int(round(args.batch * args.photo_share)) if getattr(args, "photo_bank", 0) else 0


# ----------------------------------------------------------------------------------------------- model card
ARCH_NOTES = {
    "stargan": "One multi-genre translator (StarGAN-like) for the Genre transfer tab's translate engine: G(x, t) = "
               "encoder (7x7 conv, two strided 4x4 convs, instance norm) -> residual blocks with AdaIN from a learned "
               "embedding of the target genre -> {output}; fully convolutional, starts as the identity. "
               "Trained unpaired on posters of every genre and crops of a few content photos as inputs, against "
               "{critic}, hinge/LSGAN as below, cycle-consistency + identity losses, DiffAugment on the critic's "
               "inputs, EMA of the generator (shipped). Trained at {size} (W x H).",
    "cyclegan": "Baseline: the CycleGAN recipe for one genre pair: two ResNet generators (c7s1-64, d128, d256, 6 "
                "residual blocks, u128, u64, c7s1-3, instance norm), two 70x70 PatchGANs with instance norm, LSGAN, "
                "cycle 10 + identity 5, Adam(2e-4, 0.5), batch 1, a pool of 50 fakes. Native 128x192 (W x H).",
}


def summarize_metrics(files: list[str]) -> tuple[dict, str]:
    """Model-card metrics (run/engine/metric) and a Markdown table from evaluate-translate JSON files, or from
    evaluate-transfer ones (one engine, a flat average; they add the blotch measure)."""
    metrics, rows = {}, []
    for f in files:
        ev, run = json.loads(Path(f).read_text()), Path(f).stem
        transfer = isinstance(ev.get("engine"), str)  # evaluate-transfer: {"engine": ..., "average": {metric: v}}
        averages = {ev["engine"]: ev.get("average", {})} if transfer else ev.get("average", {})
        for eng, avg in averages.items():
            for k, v in avg.items():
                metrics[f"{run}/{eng}/{k}"] = v
            rows.append(f"| {run} | {eng} | " + " | ".join(
                "n/a" if avg.get(k) is None else f"{avg[k]:.3f}"
                for k in ("hit_rate", "hit_rate_probe", "ssim", "vgg_distance", "kid", "blotches")) + " |")
        metrics[f"{run}/translate/hit_rate_per_genre"] = {
            g: r["hit_rate"] if transfer else r["translate"]["hit_rate"] for g, r in ev.get("genres", {}).items()}
    table = ("| run | engine | hit rate | hit rate (probe) | SSIM | VGG distance | KID | blotches |\n"
             "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    return metrics, table


def write_checkpoint(net, out_dir: Path, args, info: dict, metric_files=None) -> None:
    domains = ", ".join(f"{g} {n}" for g, n in info["domains"].items())
    data = (f"Training posters (split `train` of the shared poster set, 182x268 JPEGs), centre-fitted to 2:3 at "
            f"{args.size[0]}x{args.size[1]}, random horizontal flips. Domains (posters per genre; single-genre "
            f"posters, topped up with two-genre ones below {args.min_domain}): {domains}; drawn evenly.")
    if args.arch == "stargan" and getattr(args, "photo_share", 0):
        data += (f" Inputs: training posters of every genre, rare genres drawn as often as common ones, plus "
                 f"{n_photos(args)} of each batch of {args.batch}: random 2:3 crops of the content photos.")
    budget = f"--minutes {args.minutes:g}" if args.minutes else f"--steps {info['step']}"
    training = (f"`python train/train_translator.py --arch {args.arch} {budget} --batch {args.batch} "
                f"--width {args.width}` on {info.get('device', '?')}: {info['step']} steps in "
                f"{info['elapsed'] / 60:.1f} min, {images_seen(args, info['step'])}. Adam lr G {args.lr_g}, "
                f"D {args.lr_d}, betas ({args.beta1}, {args.beta2}), linear decay over the last {args.decay:.0%} of "
                f"the budget; {args.loss} loss, cycle {args.lambda_cyc}, identity {args.lambda_id}, content "
                f"{args.lambda_content}, genre classification {getattr(args, 'lambda_cls', 0.0)}, overflow "
                f"{getattr(args, 'lambda_clip', 0.0)}, grade smoothness {getattr(args, 'lambda_tv', 0.0)}, DiffAugment "
                f"'{args.diffaug}'"
                + (f", critic {args.critic}." if args.arch == "stargan" else "."))
    critic = ("a projected GAN critic on frozen ImageNet EfficientNet-Lite1 features (fixed random channel and "
              "scale mixing, trainable spectral-norm heads, the target genre in a projection term"
              + (", and StarGAN's auxiliary genre classifier: a linear head on the pooled Lite1 features, fit on "
                 "the real posters, whose verdict on the fakes G is trained to make the target genre)"
                 if getattr(args, "lambda_cls", 0.0) else ")")
              if getattr(args, "critic", "patch") == "projected" else
              "a 70x70 PatchGAN with spectral norm and one patch map per genre")
    grade = not getattr(args, "no_grade", True)
    delta = getattr(args, "max_delta", 2.0)
    cell = 4 * getattr(args, "grade_cell", 4)
    output = (f"a colour grade: a 3x4 affine colour matrix per cell of {cell}x{cell} pixels, from the features pooled to "
              "that grid and the genre embedding, plus one global matrix per genre, spread bilinearly and applied to "
              "each pixel's RGB (the service finds the coefficients at the native size and applies them to the "
              "full-size picture)" if grade else "")
    bins, bound = getattr(args, "grade_bins", 1), getattr(args, "grade_bound", 0.0)
    if grade and bins > 1:
        output += (f"; {bins} such matrices a cell, one per luma bin, blended by each pixel's luma (a tone curve per "
                   "cell, HDRNet's bilateral grid)")
    if grade and bound:
        output += f"; every coefficient bounded to (-{bound:g}, {bound:g}) by a tanh"
    if delta:
        output += ((", then " if grade else "") + f"a decoder (nearest upsampling + 3x3 convs) whose tanh residual "
                   f"(range {delta:g}) is added")
    desc, metrics, extra = ARCH_NOTES[args.arch].format(critic=critic, size="x".join(map(str, args.size)),
                                                        output=output), {}, {}
    if metric_files:
        metrics, table = summarize_metrics(metric_files)
        desc += ("\n\nEvaluation (`python -m poster_studio evaluate-translate`, val posters never trained on): "
                 "hit rate = share of translated posters whose top genre is the target, under the project classifier "
                 "and under the VGG-19 probe; SSIM and VGG distance to the input; KID against the real val posters of "
                 "the target genre; `input` = the posters untouched, `fast` = the AdaIN engine on the same inputs; "
                 "rows with a blotch figure are `evaluate-transfer` (the 5 content photos + 25 val posters x 7 genres "
                 "at 384x576):\n\n"
                 + table + "\n\nFull results: `evaluation.json`.")
        evaluation = {Path(f).stem: json.loads(Path(f).read_text()) for f in metric_files}
        extra["evaluation.json"] = lambda p: Path(p).write_text(json.dumps(evaluation, indent=2))
    desc += "\n\nSample grids (they show real posters) stay in the run folder, not here."
    if getattr(args, "card_note", None):
        training += " " + args.card_note
    meta = {**info, "arch": args.arch, "train_args": {k: getattr(args, k, None) for k in TRAIN_ARGS}}  # --from-checkpoint reads it
    extra["training.json"] = lambda p: Path(p).write_text(json.dumps(meta, indent=2))
    hub.save_checkpoint(net, out_dir, description=desc, data=data, training=training, metrics=metrics,
                        extra_files=extra)


# ----------------------------------------------------------------------------------------------- training
def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    state_path = out / "state.safetensors"
    st = load_state(state_path) if state_path.is_file() else None
    if args.export and args.from_checkpoint:  # an earlier checkpoint of a run: weights + its training.json
        from poster_studio.transfer.translate import load_translator

        src = Path(args.from_checkpoint)
        if not (src / "training.json").is_file():
            raise SystemExit(f"{src} has no training.json (checkpoints written before it): export from the state")
        meta = json.loads((src / "training.json").read_text())
        args.max_delta, args.no_grade, args.critic, args.lambda_cls = 2.0, True, "patch", 0.0
        for k, v in meta.pop("train_args").items():
            setattr(args, k, v)
        args.arch = meta.pop("arch", "stargan")
        args.size = tuple(args.size)
        write_checkpoint(load_translator(src), Path(args.export), args, meta, args.metrics)
        print(f"exported {src} (step {meta['step']}) to {args.export}")
        return meta
    if args.export:
        if st is None:
            raise SystemExit(f"nothing to export: no {state_path}")
        args.arch = st["arch"]
        args.critic, args.lambda_cls = "patch", 0.0  # a state from before the projected critic / the genre head
        args.max_delta, args.no_grade = 2.0, True  # ... / before the colour grade
        for k, v in json.loads(st["train_args"]).items():
            setattr(args, k, v)  # build and describe the networks as they were trained
    elif st is not None and st["arch"] != args.arch:
        raise SystemExit(f"{state_path} belongs to arch {st['arch']!r}, not {args.arch!r}: use another --out.")
    elif st is not None and "lambda_cls" not in json.loads(st["train_args"]):
        args.lambda_cls = 0.0  # a run begun before the genre head goes on without it
    if st is not None and not args.export and "max_delta" not in json.loads(st["train_args"]):
        args.max_delta, args.no_grade = 2.0, True  # a run begun before the colour grade goes on without it
    out.mkdir(parents=True, exist_ok=True)
    stargan = args.arch == "stargan"
    torch.manual_seed(args.seed)
    dev = default_device()
    torch.backends.cudnn.benchmark = dev.type == "cuda"  # fixed shapes: let cuDNN pick its fastest convolutions
    G_net, D_net = make_models(args)
    G_net, D_net = G_net.to(dev), D_net.to(dev)
    G_ema = copy.deepcopy(G_net).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G_net.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_d = torch.optim.Adam([p for p in D_net.parameters() if p.requires_grad], lr=args.lr_d,
                             betas=(args.beta1, args.beta2))
    history: dict = {"step": [], **{k: [] for k in LOSS_KEYS}}
    step, elapsed, domains, device = 0, 0.0, {}, dev.type
    gen = torch.Generator().manual_seed(args.seed)
    pools = [ImagePool(args.pool), ImagePool(args.pool)]
    bank = None
    if stargan and args.photo_share > 0 and not args.export:
        if args.content and Path(args.content).is_dir():
            bank = photo_crops(args.content, args.crops, args.size, args.seed)
        if bank is None or not len(bank):
            print(f"no content photos in {args.content}: the inputs are posters only", flush=True)
            bank = None
    if not args.export:  # (an export keeps the trained run's)
        args.photo_bank = 0 if bank is None else len(bank)
    train_args = {k: getattr(args, k) for k in TRAIN_ARGS}
    if st is not None:
        G_net.load_state_dict(st["G"]), D_net.load_state_dict(st["D"]), G_ema.load_state_dict(st["G_ema"])
        opt_g.load_state_dict(st["opt_g"]), opt_d.load_state_dict(st["opt_d"])
        step, elapsed, domains, device = int(st["step"]), float(st["elapsed"]), json.loads(st["domains"]), st["device"]
        history = {k: list(v) for k, v in st["history"].items()}
        gen.set_state(st["rng"])
        pools = [ImagePool(args.pool, st[k].to(dev)) for k in ("pool_a", "pool_b")]
        print(f"resumed from step {step} ({elapsed / 60:.1f} min used)", flush=True)
    shipped = G_ema if stargan else G_net
    info = lambda: {"step": step, "elapsed": elapsed, "domains": domains, "device": device}  # noqa: E731
    if args.export:
        write_checkpoint(shipped, Path(args.export), args, info(), args.metrics)
        print(f"exported {args.arch} (step {step}) to {args.export}")
        return info()

    show = not args.no_tqdm
    cache = poster_cache(args.data, args.cache, "train", args.max_images, show, args.size)
    images = cache["images"]
    rows, doms, domains = make_domains(cache["labels"], args.genres, args.min_domain)
    counts = torch.bincount(doms, minlength=len(args.genres))
    starts = torch.cumsum(counts, 0) - counts  # rows[starts[d]:starts[d] + counts[d]] are domain d's posters
    served = cache["labels"][:, [G.GENRES.index(g) for g in args.genres]].float()
    in_rows = (served.sum(1) > 0).nonzero().flatten()  # inputs: every training poster of a served genre
    in_weights = balanced_weights(served[in_rows])
    samples = sample_inputs(Path(args.data), args.genres, images, rows, doms, max(1, 6 // len(args.genres)),
                            args.size, args.content if bank is not None else None)
    if stargan:
        print(f"inputs: {len(in_rows)} posters + {args.photo_bank} photo crops ({n_photos(args)} a batch); real "
              f"posters per genre: {domains}; critic: {args.critic}", flush=True)
    if stargan and args.lambda_cls and st is None:
        t0 = time.time()
        loss = fit_genre_head(D_net, images[rows], doms, dev)
        print(f"genre head fit on {len(rows)} real posters' frozen features: loss {loss:.3f} (chance "
              f"{math.log(len(args.genres)):.3f}), {time.time() - t0:.0f} s", flush=True)
    feature_distance = None
    if args.lambda_content:  # the upscaler's LPIPS-like VGG-19 distance (differentiable)
        import poster_studio.upscale.evaluate as upscale_evaluate

        feature_distance = upscale_evaluate.feature_distance

    def save() -> None:
        save_state(state_path, {
            "arch": args.arch, "G": G_net.state_dict(), "D": D_net.state_dict(), "G_ema": G_ema.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step, "elapsed": elapsed,
            "history": history, "rng": gen.get_state(), "train_args": json.dumps(train_args),
            "domains": json.dumps(domains), "device": device, "pool_a": pools[0].tensor(images[:1].float()),
            "pool_b": pools[1].tensor(images[:1].float())})

    def batch():
        if stargan:
            k, n_ph = len(args.genres), n_photos(args)
            n_po = args.batch - n_ph
            idx = in_rows[torch.multinomial(in_weights, n_po, replacement=True, generator=gen)]
            s = torch.multinomial(served[idx], 1, generator=gen).flatten()  # one of each poster's genres
            t = (s + torch.randint(1, k, (n_po,), generator=gen)) % k
            x = images[idx]
            if n_ph:  # photos: a random target, and a random other genre for the cycle's way back
                t_ph = torch.randint(k, (n_ph,), generator=gen)
                s = torch.cat([s, (t_ph + torch.randint(1, k, (n_ph,), generator=gen)) % k])
                t = torch.cat([t, t_ph])
                x = torch.cat([x, bank[torch.randint(len(bank), (n_ph,), generator=gen)]])
            pick = (torch.rand(args.batch, generator=gen) * counts[t]).long().clamp_max(counts[t] - 1)
            real = images[rows[starts[t] + pick]]  # a training poster of each target genre
            return (poster_batch(x, gen).to(dev), s.to(dev), t.to(dev), poster_batch(real, gen).to(dev), n_ph)
        picks = []
        for d in (0, 1):
            r = rows[doms == d]
            picks.append(poster_batch(images[r[torch.randint(len(r), (args.batch,), generator=gen)]], gen).to(dev))
        return tuple(picks)

    budget = args.minutes * 60 if args.minutes else float("inf")
    max_steps = args.steps or 10**9
    session_end = time.time() + args.session_minutes * 60 if args.session_minutes else float("inf")
    bar = tqdm(total=None if max_steps == 10**9 else max_steps, initial=step, disable=not show, mininterval=10,
               desc=args.arch)
    G_net.train(), D_net.train()
    t_last = t_log = time.time()
    step_log = step
    try:
        while step < max_steps and elapsed < budget and time.time() < session_end:
            progress = max(step / max_steps, elapsed / budget)
            scale = min(1.0, (1.0 - progress) / args.decay) if args.decay > 0 else 1.0
            for opt, lr in ((opt_g, args.lr_g), (opt_d, args.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr * scale
            if stargan:
                losses = stargan_step((G_net, D_net), (opt_g, opt_d), batch(), args, gen, feature_distance)
                ema_update(G_ema, G_net, min(args.ema, (1 + step) / (10 + step)))
            else:
                losses = cyclegan_step((G_net, D_net), (opt_g, opt_d), batch(), args, gen, pools)
            step += 1
            now = time.time()
            elapsed += now - t_last
            t_last = now
            history["step"].append(step)
            for k, v in losses.items():
                history.setdefault(k, []).append(v)
            bar.update(1)
            bar.set_postfix(d=f"{losses['d_loss']:.3f}", adv=f"{losses['g_adv']:.3f}", cyc=f"{losses['cycle']:.3f}",
                            min=f"{elapsed / 60:.1f}", refresh=False)
            if step % args.log_every == 0:
                m = min(args.log_every, len(history["step"]))
                tqdm.write(f"step {step} {elapsed / 60:.1f} min {(now - t_log) / (step - step_log):.2f} s/step; "
                           f"{images_seen(args, step)}; " + " ".join(
                               f"{k} {sum(history[k][-m:]) / m:.4f}" for k in (*LOSS_KEYS, "cls_real", "cls_fake", "overflow", "tv")
                               if len(history.get(k, ())) >= m))
                t_log, step_log = now, step
            if step % args.save_every == 0:
                save()
            if step % args.sample_every == 0:
                save_samples(shipped, samples, out / "samples" / f"step_{step:06d}.png")
                save_samples(shipped, samples, out / "samples_latest.png")
                save_loss_plot(history, out / "loss.png", LOSS_KEYS, f"{args.arch} translator losses (moving average)")
            if step % args.checkpoint_every == 0:  # the latest, and each one kept (to pick from by eye)
                write_checkpoint(shipped, out / "checkpoint", args, info())
                write_checkpoint(shipped, out / "checkpoints" / f"step_{step:06d}", args, info())
    except KeyboardInterrupt:
        save()
        print(f"\ninterrupted at step {step}: state saved, rerun the same command to go on", file=sys.stderr)
        raise
    bar.close()
    save()
    save_samples(shipped, samples, out / "samples_latest.png")
    save_loss_plot(history, out / "loss.png", LOSS_KEYS, f"{args.arch} translator losses (moving average)")
    write_checkpoint(shipped, out / "checkpoint", args, info())
    print(json.dumps({"arch": args.arch, "step": step, "minutes": round(elapsed / 60, 2), "domains": domains,
                      "images_seen": images_seen(args, step), "out": str(out)}), flush=True)
    return {**info(), "history": history}


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
