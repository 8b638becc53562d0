"""The "translate" engine's networks: unpaired poster-to-poster genre translation, trained by
train/train_translator.py (checkpoints/translator/).

- `GenreTranslator` (shipped, StarGAN-like): ONE generator for every genre it serves. G(x, t): encoder (7x7 conv,
  two strided 4x4 convs, instance norm) -> residual blocks whose instance norms take gain and bias from a learned
  embedding of the target genre t (conditional instance norm / AdaIN) -> decoder (nearest 2x upsampling + 3x3
  convs) -> tanh: a residual image added to the input. Its last conv starts at zero, so the untrained net is the
  identity and a poster keeps its layout. Native 128x192 (W x H); fully convolutional (any size divisible by 4).
  `grade=True` (the default since 2026-12-02) adds a colour-grade path before the residual (HDRNet-like, Gharbi et
  al. 2017): from the bottleneck features pooled to a coarse grid (one cell per 16x16 pixels) plus the target
  genre's embedding, a small head predicts a 3x4 affine colour matrix per cell (starting at the identity), plus a
  learned global matrix per genre, spread smoothly over the picture (bilinear) and applied to each pixel's RGB;
  `max_delta=0` (the shipped translator) leaves the decoder out: the grade alone. Why: the decoder's instance
  norms remove any per-channel constant, so without this path G could hardly make the global, genre-dependent
  colour shift that tells genres apart (the first translator runs stayed at the identity); an affine grade keeps
  every edge and cannot draw flares.
- `PatchDiscriminator`: the 70x70 PatchGAN (C64-C128-C256-C512, 4x4 convs), one patch map per genre: an image
  is judged only by the map of the genre it is real or fake for (multi-task, as StarGAN v2). Spectral norm (ours)
  or instance norm (the CycleGAN recipe). Training only: plain nn.Module.
- `CycleGANPair` (baseline, `--arch cyclegan`): the CycleGAN recipe for one genre pair: two `ResnetGenerator`s
  (c7s1-64, d128, d256, 6 residual blocks, u128, u64, c7s1-3, instance norm, reflection padding), with the same
  call as GenreTranslator (`net(x, target)`), so the service and the evaluation take either.
- `load_translator`: whichever of the two a checkpoint folder holds (config.json "arch").

Images are (N, 3, H, W) in [-1, 1]; targets are (N,) indices into `net.genres`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from .. import genres as G
from .. import hub
from ..errors import CheckpointError

CHECKPOINT_NAME = "translator"
NATIVE_SIZE = (128, 192)  # (W, H)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    """Reflection-padded conv ('same' for stride 1, halving for stride 2 with k=4)."""
    pad = (k - 1) // 2 if stride == 1 else (k - stride) // 2
    return [nn.ReflectionPad2d(pad), nn.Conv2d(cin, cout, k, stride)]


class AdaINResBlock(nn.Module):
    """conv-AdaIN-ReLU-conv-AdaIN + skip; AdaIN = instance norm with (1 + gain, bias) from the genre embedding."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.conv1 = nn.Sequential(*_conv(channels, channels, 3))
        self.conv2 = nn.Sequential(*_conv(channels, channels, 3))
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = nn.Linear(embed_dim, 4 * channels)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = self.style(e)[:, :, None, None].chunk(4, 1)
        h = F.relu(self.norm(self.conv1(x)) * (1 + g1) + b1)
        return x + self.norm(self.conv2(h)) * (1 + g2) + b2


class GenreTranslator(nn.Module, hub.HubMixin):
    """Multi-genre poster translator (see the module docstring). `size`: native (W, H); `width`: channels of the
    first conv (x2, x4 after the two downsamplings); `max_delta`: the decoder residual's range (2 = any colour; 0 =
    no decoder: the colour grade alone, which cannot draw the flares the residual drew in training); `grade`: the
    colour-grade path; `grade_cell`: its cells, in bottleneck positions (4 = 16x16 pixels)."""

    arch = "stargan"

    def __init__(self, arch: str = "stargan", genres: Sequence[str] = G.GENRES, size: Sequence[int] = NATIVE_SIZE,
                 width: int = 64, n_res: int = 6, embed_dim: int = 64, max_delta: float = 2.0, grade: bool = True,
                 grade_cell: int = 4, grade_bins: int = 1, grade_bound: float = 0.0):
        super().__init__()
        self.genres = tuple(G.parse_genre(g) for g in genres)
        self.size = tuple(int(s) for s in size)
        self.width, self.max_delta, self.grade = int(width), float(max_delta), bool(grade)
        self.grade_cell = int(grade_cell)  # bottleneck positions (of 4x4 pixels) per grade cell: 4 = 16x16 pixels
        self.grade_bins = int(grade_bins)  # luma bins per cell (a bilateral grid): 1 = one affine matrix per cell
        self.grade_bound = float(grade_bound)  # > 0: every coefficient kept in (-bound, bound) by a tanh; 0 = free
        if self.grade_bins < 1 or self.grade_bound < 0:
            raise ValueError("grade_bins must be >= 1 and grade_bound >= 0")
        w1, w2, w4 = width, 2 * width, 4 * width
        self.embed = nn.Embedding(len(self.genres), embed_dim)
        self.encoder = nn.Sequential(
            *_conv(3, w1, 7), nn.InstanceNorm2d(w1, affine=True), nn.ReLU(True),
            *_conv(w1, w2, 4, 2), nn.InstanceNorm2d(w2, affine=True), nn.ReLU(True),
            *_conv(w2, w4, 4, 2), nn.InstanceNorm2d(w4, affine=True), nn.ReLU(True))
        self.blocks = nn.ModuleList([AdaINResBlock(w4, embed_dim) for _ in range(n_res)])
        self.decoder = None if self.max_delta == 0 else nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(w4, w2, 3), nn.InstanceNorm2d(w2, affine=True),
            nn.ReLU(True),
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv(w2, w1, 3), nn.InstanceNorm2d(w1, affine=True),
            nn.ReLU(True),
            *_conv(w1, 3, 7))
        if self.decoder is not None:
            nn.init.zeros_(self.decoder[-1].weight), nn.init.zeros_(self.decoder[-1].bias)  # starts as the identity
        if not (self.grade or self.decoder is not None):
            raise ValueError("a translator needs the colour grade (grade=True) or the residual (max_delta > 0)")
        if self.grade:  # the colour-grade head (module docstring): pooled features + genre -> 12 coefficients a cell
            self.grade_in = nn.Conv2d(w4, w4, 1)
            self.grade_genre = nn.Linear(embed_dim, w4)
            self.grade_out = nn.Conv2d(w4, 12 * self.grade_bins, 1)
            self.grade_global = nn.Embedding(len(self.genres), 12 * self.grade_bins)  # each genre's own grade
            nn.init.zeros_(self.grade_out.weight), nn.init.zeros_(self.grade_out.bias)  # the identity grade
            nn.init.zeros_(self.grade_global.weight)

    def grade_coefficients(self, h: torch.Tensor, e: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The grade's coefficients on its coarse grid: (N, bins, 12, cells_h, cells_w), from h (bottleneck) and
        e (genre embedding), plus the target genre's global grade; bounded by a tanh when grade_bound > 0."""
        cell = F.avg_pool2d(h, self.grade_cell, ceil_mode=True)
        z = F.relu(self.grade_in(cell) + self.grade_genre(e)[:, :, None, None])
        coef = self.grade_out(z) + self.grade_global(target)[:, :, None, None]
        if self.grade_bound:
            coef = self.grade_bound * torch.tanh(coef / self.grade_bound)
        return coef.unflatten(1, (self.grade_bins, 12))

    def colour_grade(self, x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
        """x graded by the coefficients spread over it (bilinear in space; with several bins, linear in the
        pixel's luma between the bins: a tone curve per cell, HDRNet's bilateral grid)."""
        n, bins = coef.shape[:2]
        coef = F.interpolate(coef.flatten(1, 2), size=x.shape[-2:], mode="bilinear", align_corners=False)
        coef = coef.unflatten(1, (bins, 12))
        if bins == 1:
            coef = coef[:, 0]
        else:  # hat weights over the bins at the pixel's luma (0..1)
            luma = ((0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]) * 0.5 + 0.5).clamp(0, 1)
            centres = torch.arange(bins, dtype=x.dtype, device=x.device)[None, :, None, None]
            w = (1 - (luma[:, None] * (bins - 1) - centres).abs()).clamp(min=0)  # (N, bins, H, W), sums to 1
            coef = torch.einsum("nbhw,nbchw->nchw", w, coef)
        a, b = coef[:, :9].unflatten(1, (3, 3)), coef[:, 9:]
        return x + torch.einsum("nijhw,njhw->nihw", a, x) + b  # (I + a) x + b

    def forward(self, x: torch.Tensor, target: torch.Tensor, full: Optional[torch.Tensor] = None,
                raw: bool = False):
        """x translated to the genres `target`. `full`: the same pictures at a larger size: the network still sees
        x, but its grade (smooth coefficients) is spread over `full` and applied to full's own pixels, and its residual
        (if any) enlarged (bicubic): the result has full's size and keeps its detail (HDRNet's low-res coefficients,
        full-res application). `raw` (training): (the result before its clamp to [-1, 1], the grade's coefficients
        or None), for the losses on overflow and on the grade's smoothness."""
        e = self.embed(target)
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h, e)
        base = x if full is None else full
        coef = self.grade_coefficients(h, e, target) if self.grade else None
        out = self.colour_grade(base, coef) if self.grade else base
        if self.decoder is not None:
            r = self.decoder(h)
            if full is not None:
                r = F.interpolate(r, size=full.shape[-2:], mode="bicubic", align_corners=False)
            out = out + self.max_delta * torch.tanh(r)
        return (out, coef) if raw else out.clamp(-1, 1)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN with `outputs` patch maps (one per genre). `forward(x, genre)` -> (N, h, w): each image's map
    of its genre index; without `genre`, all maps (N, outputs, h, w). norm: "spectral" or "instance"."""

    def __init__(self, outputs: int = G.NUM_GENRES, width: int = 64, norm: str = "spectral"):
        super().__init__()
        if norm not in ("spectral", "instance"):
            raise ValueError("norm must be 'spectral' or 'instance'")
        sn = spectral_norm if norm == "spectral" else (lambda m: m)
        layers, cin = [sn(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)], width
        for i, stride in enumerate((2, 2, 1)):
            cout = width * 2 ** (i + 1)
            layers += [sn(nn.Conv2d(cin, cout, 4, stride, 1))]
            layers += [nn.InstanceNorm2d(cout)] if norm == "instance" else []
            layers += [nn.LeakyReLU(0.2, True)]
            cin = cout
        layers += [sn(nn.Conv2d(cin, outputs, 4, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, genre: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.net(x)
        return out if genre is None else out[torch.arange(len(x), device=x.device), genre]


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: c7s1-w, d2w, d4w, n_res residual blocks, u2w, uw (transposed convs), c7s1-3, tanh."""

    def __init__(self, width: int = 64, n_res: int = 6):
        super().__init__()
        w1, w2, w4 = width, 2 * width, 4 * width

        def res():
            return nn.Sequential(*_conv(w4, w4, 3), nn.InstanceNorm2d(w4), nn.ReLU(True),
                                 *_conv(w4, w4, 3), nn.InstanceNorm2d(w4))

        self.down = nn.Sequential(
            *_conv(3, w1, 7), nn.InstanceNorm2d(w1), nn.ReLU(True),
            nn.Conv2d(w1, w2, 3, 2, 1), nn.InstanceNorm2d(w2), nn.ReLU(True),
            nn.Conv2d(w2, w4, 3, 2, 1), nn.InstanceNorm2d(w4), nn.ReLU(True))
        self.res = nn.ModuleList([res() for _ in range(n_res)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(w4, w2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w2), nn.ReLU(True),
            nn.ConvTranspose2d(w2, w1, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w1), nn.ReLU(True),
            *_conv(w1, 3, 7), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        for block in self.res:
            h = h + block(h)
        return self.up(h)


class CycleGANPair(nn.Module, hub.HubMixin):
    """The CycleGAN baseline for one genre pair (A, B): `nets[0]` makes A posters (G_BA), `nets[1]` B posters (G_AB).
    `forward(x, target)` runs each image through the generator of its target genre."""

    arch = "cyclegan"

    def __init__(self, arch: str = "cyclegan", genres: Sequence[str] = ("Comedy", "Horror_Thriller"),
                 size: Sequence[int] = NATIVE_SIZE, width: int = 64, n_res: int = 6):
        super().__init__()
        self.genres = tuple(G.parse_genre(g) for g in genres)
        if len(self.genres) != 2 or self.genres[0] == self.genres[1]:
            raise ValueError("CycleGANPair translates between two different genres")
        self.size, self.width = tuple(int(s) for s in size), int(width)
        self.nets = nn.ModuleList([ResnetGenerator(width, n_res) for _ in range(2)])

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for i, net in enumerate(self.nets):
            rows = (target == i).nonzero().flatten()
            if len(rows):
                out[rows] = net(x[rows])
        return out


TRANSLATORS: dict[str, type] = {"stargan": GenreTranslator, "cyclegan": CycleGANPair}


def load_translator(directory: Optional[str | Path] = None, hub_repo: Optional[str] = None):
    """The translator in checkpoints/translator (or `directory`, or the Hub repo's translator/), in eval mode;
    CheckpointError naming the file and the fix when it is missing or broken."""
    folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
    try:
        arch = json.loads((folder / "config.json").read_text()).get("arch", "stargan")
    except (OSError, ValueError, AttributeError):
        arch = "stargan"  # hub.load_model says what is wrong with the folder
    if arch not in TRANSLATORS:
        raise CheckpointError(f"Unknown translator arch {arch!r} in {folder / 'config.json'}: re-export it with "
                              "train/train_translator.py --export.")
    return hub.load_model(TRANSLATORS[arch], CHECKPOINT_NAME, directory=folder).eval().requires_grad_(False)
