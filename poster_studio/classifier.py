"""Multi-label poster genre classifier: EfficientNet-Lite0 fine-tuned at the poster's 2:3 shape, a 128-d
embedding (for similarity search and exemplar picking), per-genre thresholds, Grad-CAM heatmaps.

`PosterClassifier` is the network (saved with hub.HubMixin); `Classifier` is the service the app, the
CLI and the other capabilities use; `EmbeddingIndex` holds the training posters' embeddings.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import genres as G
from . import hub
from .data import IMAGENET_MEAN, IMAGENET_STD, fit_poster
from .errors import CheckpointError, InvalidArgumentError
from .images import ImageInput, load_image

CHECKPOINT_NAME = "classifier"
INDEX_TENSORS = "index.safetensors"
INDEX_META = "index.json"


class PosterClassifier(nn.Module, hub.HubMixin):
    """EfficientNet-Lite0 (ImageNet) -> global average pool -> 128-d embedding -> one logit per genre."""

    def __init__(self, image_size: Sequence[int] = (288, 192), embed_dim: int = 128,
                 genres: Sequence[str] = G.GENRES, dropout: float = 0.3, split_block: int = 5,
                 thresholds: Optional[Sequence[float]] = None):
        super().__init__()
        from .backbones import efficientnet_lite0

        self.image_size = tuple(int(s) for s in image_size)  # (H, W)
        self.genres = tuple(genres)
        self.split_block = int(split_block)
        self.backbone = efficientnet_lite0(pretrained=False)
        self.backbone.reset_classifier(0)
        width = self.backbone.num_features
        self.dropout = nn.Dropout(dropout)
        self.embed = nn.Linear(width, embed_dim)
        self.head = nn.Linear(embed_dim, len(self.genres))
        self.thresholds = [float(t) for t in (thresholds if thresholds is not None else [0.5] * len(self.genres))]

    # The forward pass in three parts, so training can cache the frozen `stem` output once.
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.bn1(b.conv_stem(x))
        for blk in b.blocks[: self.split_block]:
            x = blk(x)
        return x

    def trunk(self, f: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        for blk in b.blocks[self.split_block:]:
            f = blk(f)
        return b.bn2(b.conv_head(f))

    def head_from_map(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature map -> (logits, embedding before normalisation)."""
        emb = self.embed(self.dropout(fmap.mean((2, 3))))
        return self.head(self.dropout(F.gelu(emb))), emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_from_map(self.trunk(self.stem(x)))[0]

    def trainable_parameters(self):
        """What fine-tuning updates: the last blocks, the head conv and the new layers (stem stays frozen)."""
        b = self.backbone
        mods = [*b.blocks[self.split_block:], b.conv_head, b.bn2, self.embed, self.head]
        return [p for m in mods for p in m.parameters()]


@dataclass
class EmbeddingIndex:
    """Training posters in the classifier's embedding space (no images): ids, titles, years, vectors, probabilities."""

    ids: list[str]
    titles: list[str]
    years: list[str]
    embeddings: torch.Tensor  # (N, D) float32, L2-normalised
    probs: torch.Tensor  # (N, num_genres) float32

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        save_file({"embeddings": self.embeddings.half().contiguous(), "probs": self.probs.half().contiguous()},
                  str(folder / INDEX_TENSORS))
        (folder / INDEX_META).write_text(json.dumps({"ids": self.ids, "titles": self.titles, "years": self.years}))

    def nearest(self, query: torch.Tensor, k: int = 5, exclude: Optional[set[str]] = None) -> list[dict]:
        """k nearest training posters to an L2-normalised query vector (Euclidean distance)."""
        d = torch.cdist(query.float().view(1, -1), self.embeddings).view(-1)
        order = torch.argsort(d).tolist()
        out = []
        for i in order:
            if exclude and self.ids[i] in exclude:
                continue
            out.append({"id": self.ids[i], "title": self.titles[i], "year": self.years[i],
                        "distance": round(float(d[i]), 4)})
            if len(out) == k:
                break
        return out


def load_index(folder: str | Path | None = None, *, hub_repo: Optional[str] = None) -> EmbeddingIndex:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo)
    tensors, meta = folder / INDEX_TENSORS, folder / INDEX_META
    for f in (tensors, meta):
        if not f.is_file():
            raise CheckpointError(f"Missing embeddings index file {f}: rerun train/train_classifier.py.")
    try:
        t = load_file(str(tensors))
        m = json.loads(meta.read_text())
        idx = EmbeddingIndex(m["ids"], m["titles"], m["years"], t["embeddings"].float(), t["probs"].float())
    except (SafetensorError, ValueError, KeyError, OSError) as exc:
        raise CheckpointError(f"Corrupt embeddings index in {folder} ({exc}): rerun train/train_classifier.py.") from None
    if not (len(idx.ids) == len(idx.embeddings) == len(idx.probs)):
        raise CheckpointError(f"Embeddings index in {folder} is inconsistent (lengths differ).")
    return idx


def to_unit_tensor(img: Image.Image, size: Sequence[int]) -> torch.Tensor:
    """RGB PIL -> (3, H, W) float tensor in [0, 1]; non-poster shapes are centre-cropped to the 2:3 shape first."""
    h, w = size
    img = fit_poster(img, w, h) if abs(img.width / img.height - w / h) > 0.03 else img.resize((w, h), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)


def preprocess(img: Image.Image, size: Sequence[int]) -> torch.Tensor:
    """The classifier's input: `to_unit_tensor` normalised with ImageNet mean/std (training and inference alike)."""
    x = to_unit_tensor(img, size)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def _overlay(img: Image.Image, cam: np.ndarray, alpha: float = 0.5) -> Image.Image:
    import matplotlib

    heat = matplotlib.colormaps["jet"](cam)[..., :3]
    base = np.asarray(img, dtype=np.float32) / 255.0
    out = (1 - alpha) * base + alpha * heat
    return Image.fromarray((out * 255).clip(0, 255).astype(np.uint8))


class Classifier:
    """Genre classification service: predictions, Grad-CAM heatmaps and similar posters."""

    def __init__(self, model: PosterClassifier, index: Optional[EmbeddingIndex] = None):
        self.model = model.eval()
        self.index = index
        self.genres = model.genres
        self.thresholds = torch.tensor(model.thresholds)

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None) -> "Classifier":
        folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
        model = hub.load_model(PosterClassifier, CHECKPOINT_NAME, directory=folder)
        index = load_index(folder) if (folder / INDEX_TENSORS).exists() else None
        return cls(model, index)

    def _batch(self, images: Sequence[ImageInput]) -> tuple[list[Image.Image], torch.Tensor]:
        pils = [load_image(im) for im in images]
        return pils, torch.stack([preprocess(p, self.model.image_size) for p in pils])

    @torch.no_grad()
    def _run(self, images: Sequence[ImageInput], batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        probs, embs = [], []
        for i in range(0, len(images), batch_size):
            _, x = self._batch(images[i: i + batch_size])
            logits, emb = self.model.head_from_map(self.model.trunk(self.model.stem(x)))
            probs.append(torch.sigmoid(logits))
            embs.append(F.normalize(emb, dim=1))
        return torch.cat(probs), torch.cat(embs)

    def predict_proba(self, images: Sequence[ImageInput]) -> np.ndarray:
        """(N, num_genres) sigmoid probabilities, columns in `genres` order."""
        if len(images) == 0:
            return np.zeros((0, len(self.genres)), dtype=np.float32)
        return self._run(list(images))[0].numpy()

    def embed(self, images: Sequence[ImageInput]) -> np.ndarray:
        """(N, 128) L2-normalised embeddings."""
        return self._run(list(images))[1].numpy()

    def predict(self, image: ImageInput) -> dict:
        p = self._run([image])[0][0]
        scores = {g: round(float(s), 4) for g, s in zip(self.genres, p.tolist())}
        labels = [g for g, s, t in zip(self.genres, p.tolist(), self.thresholds.tolist()) if s >= t]
        return {"scores": scores, "labels": labels, "top": self.genres[int(p.argmax())]}

    def similar(self, image: ImageInput, k: int = 5) -> list[dict]:
        if self.index is None:
            raise CheckpointError("This classifier checkpoint has no embeddings index: rerun train/train_classifier.py.")
        if not 1 <= int(k) <= 50:
            raise InvalidArgumentError("k must be between 1 and 50.")
        return self.index.nearest(torch.from_numpy(self.embed([image])[0]), int(k))

    def analyze(self, image: ImageInput, heatmap_genres: Optional[Sequence[str]] = ("top",), k: int = 5,
                alpha: float = 0.5) -> dict:
        """Everything the Classify tab shows, from ONE pass of the network: prediction (as `predict`),
        Grad-CAM overlays for `heatmap_genres` ("top" = the top genre), and the k most similar posters."""
        img = load_image(image)
        h, w = self.model.image_size
        x = preprocess(img, (h, w))[None]
        with torch.no_grad():
            fmap = self.model.trunk(self.model.stem(x))
        fmap.requires_grad_(True)
        logits, emb = self.model.head_from_map(fmap)
        p = torch.sigmoid(logits[0]).detach()
        top = self.genres[int(p.argmax())]
        result = {"scores": {g: round(float(s), 4) for g, s in zip(self.genres, p.tolist())},
                  "labels": [g for g, s, t in zip(self.genres, p.tolist(), self.thresholds.tolist()) if s >= t],
                  "top": top, "heatmaps": {}, "similar": []}
        wanted = [top if g == "top" else G.parse_genre(g) for g in (heatmap_genres or [])]
        shown = img if abs(img.width / img.height - w / h) <= 0.03 else fit_poster(img, round(img.height * w / h), img.height)
        for g in dict.fromkeys(wanted):
            (grad,) = torch.autograd.grad(logits[0, self.genres.index(g)], fmap, retain_graph=True)
            cam = F.relu((grad.mean((2, 3), keepdim=True) * fmap).sum(1, keepdim=True))
            cam = F.interpolate(cam, size=(shown.height, shown.width), mode="bilinear", align_corners=False)[0, 0]
            cam = cam / cam.max() if cam.max() > 0 else cam
            result["heatmaps"][g] = _overlay(shown, cam.detach().numpy(), alpha)
        if self.index is not None and k:
            if not 1 <= int(k) <= 50:
                raise InvalidArgumentError("k must be between 1 and 50.")
            result["similar"] = self.index.nearest(F.normalize(emb.detach(), dim=1)[0], int(k))
        return result

    def heatmaps(self, image: ImageInput, genres: Optional[Sequence[str]] = None, alpha: float = 0.5) -> dict[str, Image.Image]:
        """Grad-CAM per genre on the last feature map, overlaid on the (2:3-fitted) poster."""
        return self.analyze(image, genres or list(self.genres), k=0, alpha=alpha)["heatmaps"]


# ----------------------------------------------------------------------------------------------- evaluation
def multilabel_metrics(probs: np.ndarray, targets: np.ndarray, thresholds: Sequence[float] | float = 0.5,
                       genres: Sequence[str] = G.GENRES) -> dict:
    """micro/macro-F1, per-genre F1 and AP, mAP, and the share of posters whose top genre is among its labels."""
    from sklearn.metrics import average_precision_score, f1_score

    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float32), (probs.shape[1],))
    pred = (probs >= t).astype(int)
    y = targets.astype(int)
    ap = [float(average_precision_score(y[:, j], probs[:, j])) if y[:, j].any() else float("nan")
          for j in range(y.shape[1])]
    f1 = f1_score(y, pred, average=None, zero_division=0)
    top = probs.argmax(1)
    return {
        "n": int(len(y)),
        "micro_f1": round(float(f1_score(y, pred, average="micro", zero_division=0)), 4),
        "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 4),
        "mAP": round(float(np.nanmean(ap)), 4),
        "top1_in_labels": round(float(y[np.arange(len(y)), top].mean()), 4),
        "per_genre": {g: {"f1": round(float(f), 4), "ap": round(a, 4)} for g, f, a in zip(genres, f1, ap)},
    }


def tune_thresholds(probs: np.ndarray, targets: np.ndarray) -> list[float]:
    """Per-genre threshold maximising that genre's F1."""
    from sklearn.metrics import f1_score

    grid = np.linspace(0.05, 0.95, 91)
    out = []
    for j in range(probs.shape[1]):
        scores = [f1_score(targets[:, j], probs[:, j] >= t, zero_division=0) for t in grid]
        out.append(round(float(grid[int(np.argmax(scores))]), 3))
    return out


def evaluate_classifier(images_dir: str | Path, labels_csv: str | Path, split: Optional[str] = "val",
                        classifier: Optional[Classifier] = None, limit: Optional[int] = None) -> dict:
    from .data import PosterDataset

    clf = classifier or Classifier.load()
    ds = PosterDataset(images_dir, labels_csv, split=None if split in (None, "all") else split, limit=limit)
    t0 = time.time()
    probs = clf.predict_proba([ds.path(i) for i in range(len(ds))])
    out = multilabel_metrics(probs, ds.targets.numpy(), clf.model.thresholds, clf.genres)
    out["split"] = split
    out["seconds"] = round(time.time() - t0, 1)
    return out


# ----------------------------------------------------------------------------------------------- CLI
def _cmd_classify(args) -> int:
    clf = Classifier.load(hub_repo=args.hub_repo)
    results = []
    for f in args.files:
        pred = clf.predict(f)
        sim = clf.similar(f, k=5) if clf.index is not None else []
        results.append({"file": f, **pred, "similar": sim})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['file']}: {', '.join(G.DISPLAY_NAMES[g] for g in r['labels']) or '(no genre above threshold)'}")
            for g, s in sorted(r["scores"].items(), key=lambda kv: -kv[1]):
                print(f"  {G.DISPLAY_NAMES[g]:<20} {s:.3f}")
            for s in r["similar"]:
                print(f"  similar: {s['title']} ({s['year']})  id={s['id']}  distance={s['distance']:.3f}")
    return 0


def _cmd_evaluate(args) -> int:
    clf = Classifier.load(hub_repo=args.hub_repo, directory=args.checkpoint)
    print(json.dumps(evaluate_classifier(args.images, args.labels, args.split, clf, args.limit), indent=2))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("classify", help="Genres, probabilities and similar posters for poster images.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--hub-repo", default=None)
    p.set_defaults(func=_cmd_classify)
    e = sub.add_parser("evaluate-classifier", help="Multi-label metrics of the classifier on a labelled split (JSON).")
    e.add_argument("--images", required=True, help="folder of <id>.jpg posters")
    e.add_argument("--labels", required=True, help="labels CSV")
    e.add_argument("--split", default="val", help="split to evaluate (default val; 'all' for every row)")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--checkpoint", default=None, help="checkpoint folder (default checkpoints/classifier)")
    e.add_argument("--hub-repo", default=None)
    e.set_defaults(func=_cmd_evaluate)


def from_imagenet(**kwargs) -> PosterClassifier:
    """A fresh PosterClassifier whose backbone carries the packaged ImageNet weights (start of training)."""
    from .backbones import efficientnet_lite0

    model = PosterClassifier(**kwargs)
    state = {k: v for k, v in efficientnet_lite0(pretrained=True).state_dict().items() if not k.startswith("classifier.")}
    model.backbone.load_state_dict(state, strict=True)
    return model


class SeedHead(nn.Module, hub.HubMixin):
    """The seed recipe's head on frozen VGG-19 pool5 features: flatten -> 1024 -> 128 -> N (baseline only)."""

    def __init__(self, in_features: int = 6144, genres: Sequence[str] = G.GENRES,
                 image_size: Sequence[int] = (144, 96), thresholds: Optional[Sequence[float]] = None):
        super().__init__()
        self.genres = tuple(genres)
        self.image_size = tuple(image_size)
        self.thresholds = list(thresholds or [0.5] * len(self.genres))
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 1024), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, len(self.genres)))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)
