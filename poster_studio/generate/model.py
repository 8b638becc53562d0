"""The generator's networks (all `nn.Module` + `hub.HubMixin`; configuration = `__init__` kwargs; `arch` names
the family), their discriminators, and DiffAugment.

- `PosterGAN` ("ours"): a lightweight DCGAN-style generator with small-data/small-compute tricks, native 128x192
  (W x H, the posters' 2:3 shape). Conditioned on the multi-hot genre vector through a learned genre embedding
  (mean of the ticked genres' embeddings) concatenated to z and fed to every conditional BatchNorm (BigGAN-style
  per-channel gain/bias). Trained against `PosterCritic`, a spectral-norm projection discriminator (Miyato &
  Koyama 2018) with the hinge loss, DiffAugment (Zhao et al. 2020) and an EMA of the generator weights.
- `DCGANSeed` ("dcgan-seed"): the PyTorch tutorial DCGAN generator, 64x64, unconditional (the seed baseline).
- `CGANSeed` ("cgan-seed"): the seed's conditional DCGAN, 64x128 (W x H), z of 100 + genre vector as input.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from .. import genres as G
from .. import hub

CHECKPOINT_NAME = "generator"


def norm_condition(c: torch.Tensor) -> torch.Tensor:
    """Multi-hot -> weights summing to 1 (mean of the ticked genres' embeddings)."""
    return c / c.sum(1, keepdim=True).clamp_min(1.0)


# ----------------------------------------------------------------------------------------------- ours
class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine; gain and bias predicted from the condition vector (identity at init)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.bias = nn.Linear(cond_dim, channels)
        nn.init.zeros_(self.gain.weight), nn.init.zeros_(self.gain.bias)
        nn.init.zeros_(self.bias.weight), nn.init.zeros_(self.bias.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(cond)[:, :, None, None]) + self.bias(cond)[:, :, None, None]


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int, convs: int = 1):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, 1, bias=False) for i in range(convs)])
        self.norms = nn.ModuleList([ConditionalBatchNorm(cout, cond_dim) for _ in range(convs)])

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        for conv, norm in zip(self.convs, self.norms):
            x = F.leaky_relu(norm(conv(x), cond), 0.2)
        return x


class GenerativeNet(nn.Module):
    """Common interface of every generator: `forward(z, c) -> (N, 3, H, W) in [-1, 1]`."""

    arch = "?"
    z_dim: int
    width: int
    height: int
    conditional: bool = True
    genre_prior: dict

    @property
    def native_size(self) -> tuple[int, int]:
        return (self.width, self.height)


class PosterGAN(GenerativeNet, hub.HubMixin):
    """Genre-conditioned poster generator (ours): z + genre embedding -> 4x6 -> five 2x upsampling blocks
    with conditional BatchNorm -> 128x192 RGB (W x H)."""

    arch = "ours"

    def __init__(self, arch: str = "ours", z_dim: int = 128, embed_dim: int = 128,
                 channels: Sequence[int] = (256, 192, 128, 64, 32, 16), base: Sequence[int] = (6, 4),
                 num_genres: int = G.NUM_GENRES, genres: Sequence[str] = G.GENRES,
                 genre_prior: Optional[dict] = None, double_conv_until: int = 16 * 24):
        super().__init__()
        self.z_dim, self.embed_dim = int(z_dim), int(embed_dim)
        self.channels = tuple(int(c) for c in channels)
        self.base = tuple(int(b) for b in base)  # (H, W) of the first feature map
        self.genres = tuple(genres)
        self.genre_prior = dict(genre_prior or {})
        scale = 2 ** (len(self.channels) - 1)
        self.height, self.width = self.base[0] * scale, self.base[1] * scale
        self.embed = nn.Linear(num_genres, embed_dim, bias=False)
        cond_dim = z_dim + embed_dim
        self.fc = nn.Linear(cond_dim, self.channels[0] * self.base[0] * self.base[1])
        self.fc_norm = ConditionalBatchNorm(self.channels[0], cond_dim)
        blocks = []
        h, w = self.base
        for cin, cout in zip(self.channels[:-1], self.channels[1:]):
            h, w = h * 2, w * 2
            blocks.append(UpBlock(cin, cout, cond_dim, convs=2 if h * w <= double_conv_until else 1))
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.Conv2d(self.channels[-1], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        cond = torch.cat([z, self.embed(norm_condition(c))], 1)
        x = self.fc(cond).view(-1, self.channels[0], *self.base)
        x = F.leaky_relu(self.fc_norm(x, cond), 0.2)
        for block in self.blocks:
            x = block(x, cond)
        return torch.tanh(self.to_rgb(x))


class PosterCritic(nn.Module, hub.HubMixin):
    """Projection discriminator with spectral norm: strided 4x4 convs 128x192 -> 4x6, sum pooling,
    output = linear(phi(x)) + <embed(c), phi(x)> (multi-hot c averaged like the generator's)."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256, 256), num_genres: int = G.NUM_GENRES):
        super().__init__()
        layers, cin = [], 3
        for cout in channels:
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = cout
        layers += [spectral_norm(nn.Conv2d(cin, cin, 3, 1, 1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Linear(cin, 1))
        self.embed = spectral_norm(nn.Linear(num_genres, cin, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.features(x).sum((2, 3))
        return self.out(h).squeeze(1) + (self.embed(norm_condition(c)) * h).sum(1)


# ----------------------------------------------------------------------------------------------- seeds
def _dcgan_init(m: nn.Module) -> None:
    """The tutorial's weights_init: N(0, 0.02) convs, N(1, 0.02) BN gains."""
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANSeed(GenerativeNet, hub.HubMixin):
    """Seed baseline: the PyTorch tutorial DCGAN generator (z 100 -> 64x64), unconditional."""

    arch = "dcgan-seed"
    conditional = False

    def __init__(self, arch: str = "dcgan-seed", z_dim: int = 100, ngf: int = 64, genres: Sequence[str] = G.GENRES,
                 genre_prior: Optional[dict] = None):
        super().__init__()
        self.z_dim, self.width, self.height = int(z_dim), 64, 64
        self.genres, self.genre_prior = tuple(genres), dict(genre_prior or {})
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.main(z[:, :, None, None])


class DCGANSeedCritic(nn.Module, hub.HubMixin):
    """The tutorial DCGAN discriminator (64x64), returning logits (BCE-with-logits = the tutorial's Sigmoid+BCE)."""

    def __init__(self, ndf: int = 64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.main(x).flatten()


class CGANSeed(GenerativeNet, hub.HubMixin):
    """Seed baseline: conditional DCGAN, input z 100 + genre vector (one-hot for single-genre requests,
    multi-hot for combinations), transposed convs 4x2 -> 128x64 (H x W), i.e. 64x128 W x H."""

    arch = "cgan-seed"

    def __init__(self, arch: str = "cgan-seed", z_dim: int = 100, ngf: int = 32, num_genres: int = G.NUM_GENRES,
                 genres: Sequence[str] = G.GENRES, genre_prior: Optional[dict] = None):
        super().__init__()
        self.z_dim, self.width, self.height = int(z_dim), 64, 128
        self.genres, self.genre_prior = tuple(genres), dict(genre_prior or {})
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim + num_genres, ngf * 16, (4, 2), 1, 0, bias=False), nn.BatchNorm2d(ngf * 16), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 16, ngf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.main(torch.cat([z, c], 1)[:, :, None, None])


class CGANSeedCritic(nn.Module, hub.HubMixin):
    """The seed's conditional DCGAN discriminator: image + genre vector broadcast as extra input planes."""

    def __init__(self, ndf: int = 32, num_genres: int = G.NUM_GENRES):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3 + num_genres, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 8, ndf * 16, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 16), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 16, 1, (4, 2), 1, 0, bias=False))
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        planes = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, planes], 1)).flatten()


# ----------------------------------------------------------------------------------------------- projected (v2)
class NoiseInjection(nn.Module):
    """Per-pixel noise scaled by a learned per-channel weight (zero at init). Training draws fresh noise; in eval
    mode a fixed noise map per resolution is used, so a seed gives the same poster every time."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.training:
            noise = torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)
        else:
            g = torch.Generator().manual_seed(h * 10007 + w)
            noise = torch.randn(1, 1, h, w, generator=g).to(x.device, x.dtype)
        return x + self.weight * noise


class SkipExcitation(nn.Module):
    """FastGAN's skip-layer excitation: a low-resolution feature map gates the channels of a high-resolution one."""

    def __init__(self, c_low: int, c_high: int):
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_low, c_high, 4, 1, 0, bias=False),
                                 nn.LeakyReLU(0.1), nn.Conv2d(c_high, c_high, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return high * self.net(low)


class NoisyUpBlock(nn.Module):
    """Nearest 2x upsampling, two 3x3 convs, each followed by noise injection, conditional BatchNorm, LeakyReLU."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.noise1, self.noise2 = NoiseInjection(cout), NoiseInjection(cout)
        self.norm1, self.norm2 = ConditionalBatchNorm(cout, cond_dim), ConditionalBatchNorm(cout, cond_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.leaky_relu(self.norm1(self.noise1(self.conv1(x)), cond), 0.2)
        return F.leaky_relu(self.norm2(self.noise2(self.conv2(x)), cond), 0.2)


class ProjectedPosterGAN(GenerativeNet, hub.HubMixin):
    """Generate v2 generator ("projected"), FastGAN-lite: z + multi-hot genre embedding -> 6x4 map, 3x nearest
    upsampling and a 3x3 conv -> 18x12 -> four
    noisy 2x up-blocks with conditional BatchNorm and skip-layer excitation (36x24 gates 144x96, 72x48 gates
    288x192) -> 192x288 RGB (W x H, the poster's 2:3 shape at the data's own resolution). Trained against
    `ProjectedCritic`."""

    arch = "projected"

    def __init__(self, arch: str = "projected", z_dim: int = 128, embed_dim: int = 128,
                 channels: Sequence[int] = (256, 128, 64, 32, 16), base: Sequence[int] = (18, 12),
                 num_genres: int = G.NUM_GENRES, genres: Sequence[str] = G.GENRES, genre_prior: Optional[dict] = None):
        super().__init__()
        if len(channels) != 5 or base[0] % 3 or base[1] % 3:
            raise ValueError("channels: five widths (base map, then after each of four up-blocks); base: (H, W) "
                             "multiples of 3")
        self.z_dim, self.embed_dim = int(z_dim), int(embed_dim)
        self.channels, self.base = tuple(int(c) for c in channels), tuple(int(b) for b in base)
        self.genres, self.genre_prior = tuple(genres), dict(genre_prior or {})
        self.height, self.width = self.base[0] * 16, self.base[1] * 16
        cond_dim = self.z_dim + self.embed_dim
        self.embed = nn.Linear(num_genres, embed_dim, bias=False)
        c = self.channels
        self.fc = nn.Linear(cond_dim, c[0] * (self.base[0] // 3) * (self.base[1] // 3))
        self.fc_norm = ConditionalBatchNorm(c[0], cond_dim)
        self.init_conv = nn.Conv2d(c[0], c[0], 3, 1, 1, bias=False)
        self.init_noise, self.init_norm = NoiseInjection(c[0]), ConditionalBatchNorm(c[0], cond_dim)
        self.blocks = nn.ModuleList([NoisyUpBlock(c[i], c[i + 1], cond_dim) for i in range(4)])
        self.sle = nn.ModuleList([SkipExcitation(c[1], c[3]), SkipExcitation(c[2], c[4])])
        self.to_rgb = nn.Conv2d(c[4], 3, 3, 1, 1)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        cond = torch.cat([z, self.embed(norm_condition(c))], 1)
        x = self.fc(cond).view(-1, self.channels[0], self.base[0] // 3, self.base[1] // 3)
        x = F.interpolate(F.leaky_relu(self.fc_norm(x, cond), 0.2), scale_factor=3, mode="nearest")
        x = F.leaky_relu(self.init_norm(self.init_noise(self.init_conv(x)), cond), 0.2)
        x36 = self.blocks[0](x, cond)
        x72 = self.blocks[1](x36, cond)
        x144 = self.sle[0](self.blocks[2](x72, cond), x36)
        x288 = self.sle[1](self.blocks[3](x144, cond), x72)
        return torch.tanh(self.to_rgb(x288))


class ProjectedCritic(nn.Module):
    """Projected GAN discriminator (Sauer et al. 2021) for multi-label posters. The frozen ImageNet
    EfficientNet-Lite0's (or, `variant=1`, Lite1's: the same stages, deeper) first four stages (1/4, 1/8, 1/16, 1/32) see the poster at its own 2:3 shape; fixed random
    1x1 convs mix channels (CCM) and fixed random 3x3 convs mix each scale with the upsampled coarser one (CSM);
    a small trainable head with spectral norm per scale gives patch logits plus a projection term
    <embed(c), h> of the multi-hot genre condition. Returns (N, patches) logits over all scales (hinge loss).
    `genre_head`: also a trainable linear genre classifier on the frozen backbone's pooled last stage (StarGAN's
    auxiliary classifier, for the translator): forward(..., with_genres=True) returns (logits, genre logits).
    Not shipped (training only), so plain nn.Module."""

    STAGES = ((0, 2), (2, 3), (3, 5), (5, 7))  # EfficientNet-Lite0 blocks per stage (Projected GAN's split)

    def __init__(self, num_genres: int = G.NUM_GENRES, mix_channels: Sequence[int] = (64, 128, 256, 512),
                 head_channels: int = 64, pretrained: bool = True, seed: int = 0, variant: int = 0,
                 genre_head: bool = False):
        super().__init__()
        from ..backbones import efficientnet_lite

        net = efficientnet_lite(variant, pretrained=pretrained)
        self.stem = nn.Sequential(net.conv_stem, net.bn1)
        self.stages = nn.ModuleList([nn.Sequential(*net.blocks[a:b]) for a, b in self.STAGES])
        feat_ch = [self.stages[i][-1][-1].conv_pwl.out_channels for i in range(4)]
        gen = torch.Generator().manual_seed(seed)  # the fixed random mixing is part of the model: seeded
        self.ccm = nn.ModuleList([nn.Conv2d(f, m, 1) for f, m in zip(feat_ch, mix_channels)])
        self.csm = nn.ModuleList([nn.Conv2d(m, m, 3, 1, 1) for m in mix_channels])
        self.csm_up = nn.ModuleList([nn.Conv2d(mix_channels[i + 1], mix_channels[i], 1) for i in range(3)])
        for conv in [*self.ccm, *self.csm, *self.csm_up]:
            nn.init.kaiming_uniform_(conv.weight, a=5 ** 0.5, generator=gen)
            nn.init.uniform_(conv.bias, -0.01, 0.01, generator=gen)
        for m in (self.stem, self.stages, self.ccm, self.csm, self.csm_up):
            m.requires_grad_(False)
        self.heads = nn.ModuleList([
            nn.Sequential(spectral_norm(nn.Conv2d(m, head_channels, 3, 2 if i < 2 else 1, 1)), nn.LeakyReLU(0.2),
                          spectral_norm(nn.Conv2d(head_channels, head_channels, 3, 2 if i == 0 else 1, 1)),
                          nn.LeakyReLU(0.2))
            for i, m in enumerate(mix_channels)])
        self.out = nn.ModuleList([spectral_norm(nn.Conv2d(head_channels, 1, 1)) for _ in mix_channels])
        self.embed = nn.ModuleList([spectral_norm(nn.Linear(num_genres, head_channels, bias=False))
                                    for _ in mix_channels])
        self.genre_head = nn.Linear(feat_ch[-1], num_genres) if genre_head else None
        from ..data import IMAGENET_MEAN, IMAGENET_STD

        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.stem.eval(), self.stages.eval()  # frozen BatchNorm statistics of the pretrained network
        return self

    def backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The frozen network's four stage outputs for x in [-1, 1]."""
        h, out = self.stem(((x + 1) / 2 - self.mean) / self.std), []
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """What the genre head reads: the last stage's mean over positions, (N, channels)."""
        return self.backbone(x)[-1].mean((2, 3))

    def forward(self, x: torch.Tensor, c: torch.Tensor, with_genres: bool = False):
        stages = self.backbone(x)
        feats, h = [ccm(f) for f, ccm in zip(stages, self.ccm)], stages[-1]
        for i in (2, 1, 0):  # cross-scale mixing, coarse to fine
            up = F.interpolate(self.csm_up[i](feats[i + 1]), size=feats[i].shape[-2:], mode="bilinear",
                               align_corners=False)
            feats[i] = feats[i] + up
        cond = norm_condition(c)
        logits = []
        for f, csm, head, out, embed in zip(feats, self.csm, self.heads, self.out, self.embed):
            g = head(csm(f))
            logits.append((out(g) + (embed(cond)[:, :, None, None] * g).sum(1, keepdim=True)).flatten(1))
        if with_genres:
            if self.genre_head is None:
                raise ValueError("this critic was built without genre_head")
            return torch.cat(logits, 1), self.genre_head(h.mean((2, 3)))
        return torch.cat(logits, 1)


ARCHS: dict[str, tuple[type, type]] = {
    "projected": (ProjectedPosterGAN, ProjectedCritic),
    "ours": (PosterGAN, PosterCritic),
    "dcgan-seed": (DCGANSeed, DCGANSeedCritic),
    "cgan-seed": (CGANSeed, CGANSeedCritic),
}


# ----------------------------------------------------------------------------------------------- DiffAugment
def diff_augment(x: torch.Tensor, policy: str = "translation", generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): differentiable color / translation / cutout, applied to real and fake
    images alike before the discriminator. `policy`: comma-separated subset of color,translation,cutout."""
    if not policy:
        return x
    n = x.shape[0]
    dev = x.device

    def rand(*shape):  # drawn on the (CPU) generator, so a run is reproducible on any device
        return torch.rand(*shape, generator=generator).to(dev)

    for p in policy.split(","):
        p = p.strip()
        if p == "color":
            x = x + (rand(n, 1, 1, 1) - 0.5)
            mean = x.mean(1, keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean
            mean = x.mean((1, 2, 3), keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean
        elif p == "translation":
            h, w = x.shape[2], x.shape[3]
            sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            th = (rand(n) * (2 * sh + 1)).long() - sh
            tw = (rand(n) * (2 * sw + 1)).long() - sw
            gy, gx = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
            gy = (gy[None] + th[:, None, None] + 1).clamp(0, h + 1)
            gx = (gx[None] + tw[:, None, None] + 1).clamp(0, w + 1)
            padded = F.pad(x, (1, 1, 1, 1))
            idx = (gy * (w + 2) + gx).view(n, 1, -1).expand(-1, x.shape[1], -1)
            x = padded.flatten(2).gather(2, idx).view_as(x)
        elif p == "cutout":
            h, w = x.shape[2], x.shape[3]
            ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
            oy = (rand(n) * (h + 1 - ch % 2)).long()
            ox = (rand(n) * (w + 1 - cw % 2)).long()
            gy, gx = torch.meshgrid(torch.arange(ch, device=dev), torch.arange(cw, device=dev), indexing="ij")
            gy = (gy[None] + oy[:, None, None] - ch // 2).clamp(0, h - 1)
            gx = (gx[None] + ox[:, None, None] - cw // 2).clamp(0, w - 1)
            mask = torch.ones(n, h, w, device=dev)
            mask[torch.arange(n, device=dev)[:, None, None], gy, gx] = 0
            x = x * mask[:, None]
        elif p:
            raise ValueError(f"Unknown DiffAugment policy {p!r}")
    return x
