"""The classifier's networks and its embeddings index.

- `PosterClassifier`: EfficientNet-Lite0 (or `variant` 1, 2) (ImageNet) at the poster's 2:3 shape -> global average pool -> 128-d
  embedding -> one logit per genre; per-genre thresholds in its config. `from_imagenet()` starts training.
- `SeedHead`: the seed recipe's MLP on frozen VGG-19 pool5 features (the baseline).
- `EmbeddingIndex`: the training posters in the embedding space (ids, titles, years, vectors, probabilities; no
  images), saved beside the weights as index.safetensors + index.json.
- `preprocess`: a PIL picture -> the network's input tensor (training and inference alike).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF

from .. import genres as G
from .. import hub
from ..backbones import efficientnet_lite
from ..data import IMAGENET_MEAN, IMAGENET_STD, repair_title
from ..errors import CheckpointError
from ..images import fit_image, needs_fitting, to_tensor

CHECKPOINT_NAME = "classifier"
INDEX_TENSORS = "index.safetensors"
INDEX_META = "index.json"


class PosterClassifier(nn.Module, hub.HubMixin):
    """EfficientNet-Lite{variant} (ImageNet; the shipped one is Lite0) -> global average pool -> 128-d embedding ->
    one logit per genre. A checkpoint without `variant` in its config (all before 2026-12-02) is Lite0."""

    def __init__(self, image_size: Sequence[int] = (288, 192), embed_dim: int = 128,
                 genres: Sequence[str] = G.GENRES, dropout: float = 0.3, split_block: int = 5,
                 thresholds: Optional[Sequence[float]] = None, variant: int = 0):
        super().__init__()
        self.image_size = tuple(int(s) for s in image_size)  # (H, W)
        self.genres = tuple(genres)
        self.split_block = int(split_block)
        self.variant = int(variant)
        self.backbone = efficientnet_lite(self.variant, pretrained=False)
        self.backbone.reset_classifier(0)
        width = self.backbone.num_features
        self.dropout = nn.Dropout(dropout)
        self.embed = nn.Linear(width, embed_dim)
        self.head = nn.Linear(embed_dim, len(self.genres))
        self.thresholds = [float(t) for t in (thresholds if thresholds is not None else [0.5] * len(self.genres))]

    # The forward pass in three parts, so training can cache the frozen `stem` output once and the service can
    # rerun only the head on a kept feature map (Grad-CAM for another genre).
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

    def block_output(self, x: torch.Tensor, block: int) -> torch.Tensor:
        """The output of backbone stage `block` (0-6) for a normalised input (what deep dream amplifies)."""
        b = self.backbone
        h = b.bn1(b.conv_stem(x))
        for blk in b.blocks[: block + 1]:
            h = blk(h)
        return h

    def head_from_map(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature map -> (logits, embedding before normalisation)."""
        emb = self.embed(self.dropout(fmap.mean((2, 3))))
        return self.head(self.dropout(F.gelu(emb))), emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_from_map(self.trunk(self.stem(x)))[0]

    # The interface shared with `PosterEnsemble` (ensemble.py), which the services use: a tuple of feature maps
    # (one per member; Grad-CAM differentiates the `primary` one) and the head over them.
    primary = 0

    @property
    def embed_dim(self) -> int:
        return self.embed.out_features

    @property
    def primary_network(self) -> "PosterClassifier":
        """The network that gradient-based uses differentiate (dreams, generation guidance): this one."""
        return self

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.trunk(self.stem(x)),)

    def head_from_maps(self, maps) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head_from_map(maps[0])

    def trainable_parameters(self):
        """What fine-tuning updates: the last blocks, the head conv and the new layers (stem stays frozen)."""
        b = self.backbone
        mods = [*b.blocks[self.split_block:], b.conv_head, b.bn2, self.embed, self.head]
        return [p for m in mods for p in m.parameters()]


def from_imagenet(**kwargs) -> PosterClassifier:
    """A fresh PosterClassifier whose backbone carries the packaged ImageNet weights (start of training)."""
    model = PosterClassifier(**kwargs)
    state = {k: v for k, v in efficientnet_lite(model.variant, pretrained=True).state_dict().items()
             if not k.startswith("classifier.")}
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


class _AfterNorm(nn.Module):
    """What a folded BatchNorm leaves: timm's BatchNormAct2d applies dropout and its activation after the norm."""

    def __init__(self, bn: nn.Module):
        super().__init__()
        self.drop = getattr(bn, "drop", nn.Identity())
        self.act = getattr(bn, "act", nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(x))


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a Conv2d (registration order, as in timm's EfficientNets) into
    the conv's weights and bias, in place: the same function in eval mode (inference and input gradients alike)
    at less CPU time (the shipped ensemble, one thread: 104 -> 80 ms a poster), but no longer trainable as before
    and with other state-dict keys, so only for a network that is served, never saved (`Classifier.load` folds
    the network it loaded). The arithmetic is torch's own (`torch.nn.utils.fusion.fuse_conv_bn_weights`); this
    walks timm's modules, where the norm also holds the activation."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    for parent in module.modules():
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats \
                    and bn.running_var is not None and conv.out_channels == bn.num_features:
                conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                              bn.eps, bn.weight, bn.bias)
                conv.weight.requires_grad_(False), conv.bias.requires_grad_(False)
                parent._modules[b] = _AfterNorm(bn)
    return module


def fit_to_input(img: Image.Image, size: Sequence[int]) -> Image.Image:
    """The picture at the network's (H, W): posters are resized, other shapes centre-cropped to 2:3 first."""
    h, w = size
    if needs_fitting(img, w, h):
        return fit_image(img, (w, h), "crop")
    return img.resize((w, h), Image.Resampling.BICUBIC)


def preprocess(img: Image.Image, size: Sequence[int], *, normalize: bool = True) -> torch.Tensor:
    """The network's input (3, H, W) for a PIL picture: fitted (see fit_to_input), in [0, 1], then ImageNet
    mean/std normalised unless `normalize` is False (the VGG-19 seed recipe normalises itself)."""
    x = to_tensor(fit_to_input(img, size))
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD) if normalize else x


@dataclass
class EmbeddingIndex:
    """Training posters in the classifier's embedding space (no images): ids, titles, years, vectors, probabilities."""

    ids: list[str]
    titles: list[str]
    years: list[str]
    embeddings: torch.Tensor  # (N, D) float32, L2-normalised
    probs: torch.Tensor  # (N, num_genres) float32

    def files(self) -> dict[str, Callable[[Path], None]]:
        """The index's files as writers for hub.save_checkpoint(extra_files=...)."""
        from safetensors.torch import save_file

        tensors = {"embeddings": self.embeddings.half().contiguous(), "probs": self.probs.half().contiguous()}
        meta = {"ids": self.ids, "titles": self.titles, "years": self.years}
        return {INDEX_TENSORS: lambda p: save_file(tensors, str(p)),
                INDEX_META: lambda p: p.write_text(json.dumps(meta))}

    def nearest(self, query: torch.Tensor, k: int = 5, exclude: Optional[set[str]] = None) -> list[dict]:
        """k nearest training posters to an L2-normalised query vector (Euclidean distance)."""
        d = torch.cdist(query.float().cpu().view(1, -1), self.embeddings).view(-1)
        out = []
        for i in torch.argsort(d).tolist():
            if exclude and self.ids[i] in exclude:
                continue
            out.append({"id": self.ids[i], "title": self.titles[i], "year": self.years[i],
                        "distance": round(float(d[i]), 4)})
            if len(out) == k:
                break
        return out


def load_index(folder: str | Path | None = None, *, hub_repo: Optional[str] = None) -> EmbeddingIndex:
    folder = Path(folder) if folder is not None else hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo)
    fix = "rerun train/train_classifier.py"
    t, m = hub.load_side_files(folder, INDEX_TENSORS, INDEX_META, fix)
    try:
        idx = EmbeddingIndex(m["ids"], [repair_title(s) for s in m["titles"]], m["years"], t["embeddings"].float(),
                             t["probs"].float())  # titles as the data spells them, mojibake undone for display
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"Corrupt embeddings index in {folder} (missing {exc}): {fix}.") from None
    if not (len(idx.ids) == len(idx.embeddings) == len(idx.probs)):
        raise CheckpointError(f"Embeddings index in {folder} is inconsistent (lengths differ): {fix}.")
    return idx
