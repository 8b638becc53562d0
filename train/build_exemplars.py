"""Pick each genre's exemplar posters with the classifier's embeddings index and ship their style statistics.

  python train/build_exemplars.py --data ../shared/data/posters [--method seed|topk|clusters] [--k 4] [--score prob|margin]

Reads the index of checkpoints/classifier/ (index.safetensors + index.json, written by train_classifier.py),
selects exemplars per genre (poster_studio.exemplars), opens those posters from --data (only here, at build
time), runs VGG-19 once per poster and writes into --out (checkpoints/transfer/): exemplars.safetensors with the
blended per-genre feature mean/std (relu1_1..relu4_1; AdaIN), Gram matrices (relu1_1..relu5_1; Gatys) and the
per-exemplar relu4_1 mean/std, and exemplars.json with ids, titles, years and weights. Never the images.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio.backbones import VGG19Features  # noqa: E402
from poster_studio.data import default_data_dir  # noqa: E402
from poster_studio.exemplars import METHODS, SCORES, select_exemplars  # noqa: E402
from poster_studio.images import load_image  # noqa: E402
from poster_studio.transfer import (ENCODER_LAYER, GRAM_LAYERS, STAT_LAYERS, STYLE_SIZE, ExemplarBank,  # noqa: E402
                                    GenreStyle, blend_colors, blend_statistics, style_statistics)


def build_bank(index, images_dir: str | Path, *, method: str = "seed", k: int = 4, score: str = "prob",
               pool: int = 200, genres=G.GENRES, vgg: VGG19Features | None = None, seed: int = 0,
               style_size: tuple[int, int] = STYLE_SIZE) -> ExemplarBank:
    """`index`: anything with .ids .titles .years .embeddings .probs (classifier.EmbeddingIndex)."""
    images_dir = Path(images_dir)
    vgg = vgg or VGG19Features(sorted(set(STAT_LAYERS) | set(GRAM_LAYERS)))
    styles = {}
    for g in tqdm(list(genres), desc="genres"):
        g = G.parse_genre(g)
        rows, weights = select_exemplars(torch.as_tensor(index.embeddings), torch.as_tensor(index.probs), g,
                                         method=method, k=k, score=score, pool=pool, seed=seed)
        images = [load_image(images_dir / f"{index.ids[r]}.jpg") for r in rows]
        stats = style_statistics(images, vgg, grams=True, area=style_size[0] * style_size[1])
        mean, std, gr = blend_statistics(stats, weights)
        gi = G.GENRES.index(g)
        ex = [{"id": index.ids[r], "title": index.titles[r], "year": str(index.years[r]), "weight": round(w, 4),
               "prob": round(float(index.probs[r][gi]), 4)} for r, w in zip(rows, weights)]
        pm, pc = blend_colors(stats, weights)
        styles[g] = GenreStyle(g, ex, mean, std, gr, stats["mean"][ENCODER_LAYER], stats["std"][ENCODER_LAYER], pm, pc)
    info = {"index": getattr(index, "source", "classifier"), "method": method, "k": k, "score": score, "pool": pool, "style_size": list(style_size),
            "stat_layers": list(STAT_LAYERS), "gram_layers": list(GRAM_LAYERS),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return ExemplarBank(styles, info)


def labels_index(data: str | Path, per_genre: int = 40, vgg: VGG19Features | None = None):
    """Provisional index while the classifier's is not there: per genre the first `per_genre` training posters
    labelled with that genre only; probs = their multi-hot labels, embeddings = L2-normalised PCA-128 of the
    posters' relu4_1 feature mean/std (a style embedding). Same fields as classifier.EmbeddingIndex."""
    from types import SimpleNamespace

    from poster_studio.data import read_labels
    from poster_studio.transfer import mean_std, to_tensor

    data = Path(data)
    picked = []
    for g in G.GENRES:
        picked += [r for r in read_labels(data / "labels.csv")
                   if r.split == "train" and r.genres == (g,) and (data / "images" / f"{r.id}.jpg").exists()][:per_genre]
    vgg = vgg or VGG19Features([ENCODER_LAYER])
    feats = []
    with torch.no_grad():
        for r in tqdm(picked, desc="labels index"):
            img = load_image(data / "images" / f"{r.id}.jpg").resize((128, 192))
            m, sd = mean_std(vgg(to_tensor(img), [ENCODER_LAYER])[ENCODER_LAYER])
            feats.append(torch.cat([m, sd], 1).log1p())
    x = torch.cat(feats)
    x = x - x.mean(0)
    q = min(128, len(x) - 1)
    _, _, v = torch.pca_lowrank(x, q=q, center=False)
    emb = torch.nn.functional.normalize(x @ v, dim=1)
    probs = torch.stack([G.encode(r.genres) for r in picked])
    return SimpleNamespace(source="labels+vgg-style-embedding (provisional)", ids=[r.id for r in picked], titles=[r.title for r in picked],
                           years=[r.year for r in picked], embeddings=emb, probs=probs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(default_data_dir()), help="poster folder with images/<id>.jpg")
    p.add_argument("--index", default=None, help="folder with index.safetensors/index.json (default checkpoints/classifier);"
                   " 'labels' = provisional index from labels.csv + a VGG style embedding (no classifier needed)")
    p.add_argument("--out", default=str(ROOT / "checkpoints" / "transfer"))
    p.add_argument("--method", choices=METHODS, default="seed")
    p.add_argument("--k", type=int, default=4, help="neighbours / extra exemplars per genre (k+1 exemplars)")
    p.add_argument("--score", choices=SCORES, default="prob")
    p.add_argument("--pool", type=int, default=200, help="confident posters clustered by --method clusters")
    p.add_argument("--style-size", default=f"{STYLE_SIZE[0]}x{STYLE_SIZE[1]}",
                   help="WxH (pixel count) at which exemplar statistics are computed")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from poster_studio.classifier import load_index

    index = labels_index(args.data) if args.index == "labels" else load_index(args.index)
    bank = build_bank(index, Path(args.data) / "images", method=args.method, k=args.k, score=args.score,
                      pool=args.pool, style_size=tuple(int(v) for v in args.style_size.lower().split("x")))
    bank.info["index"] = "labels (provisional)" if args.index == "labels" else str(args.index or "checkpoints/classifier")
    bank.save(args.out)
    for g, s in bank.styles.items():
        print(f"{g}: " + "; ".join(f"{e['title']} ({e['year']}) p={e['prob']}" for e in s.exemplars))
    print(f"wrote {Path(args.out) / 'exemplars.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
