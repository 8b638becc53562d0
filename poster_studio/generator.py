"""Genre-conditioned poster GAN: the networks, the `PosterGenerator` service and the `generate` /
`evaluate-generator` commands.

Networks (all `nn.Module` + `hub.HubMixin`, configuration = `__init__` kwargs, `arch` names the family):
- `PosterGAN` ("ours"): a lightweight DCGAN-style generator with modern small-data/small-compute tricks,
  native 128x192 (W x H, the posters' 2:3 shape). Conditioned on the multi-hot genre vector through a
  learned genre embedding (mean of the ticked genres' embeddings) concatenated to z and fed to every
  conditional BatchNorm (BigGAN-style per-channel gain/bias). Trained against `PosterCritic`, a
  spectral-norm projection discriminator (Miyato & Koyama 2018) with the hinge loss, DiffAugment
  (Zhao et al. 2020) and an EMA of the generator weights (the EMA copy is what is shipped).
- `DCGANSeed` ("dcgan-seed"): the PyTorch tutorial DCGAN generator, 64x64, unconditional (the seed).
- `CGANSeed` ("cgan-seed"): the seed's conditional DCGAN, 64x128 (W x H), z of 100 + genre vector as input.

Service: `PosterGenerator.load()` reads checkpoints/generator/ (or a Hub repo, see hub.py), whatever
its `arch`. `generate(genres, n, seed, truncation, size)` returns PIL posters; an empty genre list
means "any genre": each poster's genre set is drawn (seeded) from the training data's label
distribution, stored in the checkpoint config (`genre_prior`). Truncation scales z (psi * z, psi in
(0, 1]). "400x600" is served by Lanczos resampling of the native poster (see the model card).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils import spectral_norm

from . import genres as G
from . import hub
from .checks import check_int, check_truncation
from .errors import CheckpointError, InvalidArgumentError

CHECKPOINT_NAME = "generator"
SIZES = ("native", "400x600")
UPSCALED_SIZE = (400, 600)  # (W, H)
MAX_N = 16
MAX_N_CLI = 64
MAX_SEED = 2**63 - 1
MAX_MORPH_STEPS = 32


# ----------------------------------------------------------------------------------------------- helpers
def genre_vector(genres: Sequence[str]) -> torch.Tensor:
    """Multi-hot vector (parse_genre validates names; InvalidArgumentError if unknown)."""
    if isinstance(genres, str):
        genres = [genres]
    return G.encode(list(genres))


def _norm_condition(c: torch.Tensor) -> torch.Tensor:
    """Multi-hot -> weights summing to 1 (mean of the ticked genres' embeddings)."""
    return c / c.sum(1, keepdim=True).clamp_min(1.0)


def to_images(x: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] -> RGB PIL images."""
    arr = ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in arr]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return (1 - t) * a + t * b
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


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
        cond = torch.cat([z, self.embed(_norm_condition(c))], 1)
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
        return self.out(h).squeeze(1) + (self.embed(_norm_condition(c)) * h).sum(1)


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


ARCHS: dict[str, tuple[type, type]] = {
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

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=dev)

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


# ----------------------------------------------------------------------------------------------- validation
def check_size(size: Any) -> str:
    s = str(size).strip().lower().replace(" ", "") if size is not None else ""
    if s in ("native", "400x600"):
        return s
    raise InvalidArgumentError(f"size must be 'native' or '400x600', got {size!r}.")


# ----------------------------------------------------------------------------------------------- service
def genre_prior_from_records(records) -> dict[str, float]:
    """Frequency of each genre combination ("A|B" -> share) among labelled posters."""
    counts: dict[str, int] = {}
    for r in records:
        if r.genres:
            key = "|".join(sorted(r.genres, key=G.GENRES.index))
            counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def load_net(directory: Optional[str | Path] = None, hub_repo: Optional[str] = None) -> GenerativeNet:
    """Load a generator checkpoint folder of any arch (config.json `arch`)."""
    folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
    config = folder / "config.json"
    arch = "ours"
    if config.is_file():
        try:
            arch = json.loads(config.read_text()).get("arch", "ours")
        except (ValueError, UnicodeDecodeError, AttributeError):
            pass  # load_model reports the corrupt config
    if arch not in ARCHS:
        raise CheckpointError(f"{config}: unknown generator arch {arch!r} (expected one of {sorted(ARCHS)}).")
    return hub.load_model(ARCHS[arch][0], CHECKPOINT_NAME, directory=folder)


class PosterGenerator:
    """Poster generation service over a trained generator (any arch)."""

    def __init__(self, net: GenerativeNet):
        self.net = net.eval().requires_grad_(False)
        prior = getattr(net, "genre_prior", None) or {g: 1.0 / G.NUM_GENRES for g in G.GENRES}
        keys = list(prior)
        self._prior_vectors = torch.stack([G.encode(k.split("|")) for k in keys])
        self._prior_probs = torch.tensor([float(prior[k]) for k in keys], dtype=torch.float64)

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None) -> "PosterGenerator":
        return cls(load_net(directory=directory, hub_repo=hub_repo))

    @property
    def native_size(self) -> tuple[int, int]:
        return self.net.native_size

    @property
    def arch(self) -> str:
        return self.net.arch

    def _conditions(self, genres: list[str], n: int, gen: torch.Generator) -> torch.Tensor:
        if genres:
            return G.encode(genres).expand(n, -1).clone()
        idx = torch.multinomial(self._prior_probs, n, replacement=True, generator=gen)
        return self._prior_vectors[idx]

    def _render(self, z: torch.Tensor, c: torch.Tensor, size: str) -> list[Image.Image]:
        with torch.no_grad():
            imgs = to_images(self.net(z, c))
        if size == "400x600":
            imgs = [im.resize(UPSCALED_SIZE, Image.Resampling.LANCZOS) for im in imgs]
        return imgs

    def latents(self, n: int, seed: int, truncation: float) -> tuple[torch.Tensor, torch.Generator]:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.net.z_dim, generator=gen) * truncation, gen

    def generate(self, genres: Sequence[str] = (), n: int = 8, seed: int = 0, truncation: float = 0.7,
                 size: str = "native", *, max_n: int = MAX_N) -> list[Image.Image]:
        """`n` posters for the genre set (empty = any genre); same arguments -> identical images."""
        genres = G.parse_genres(genres)
        n = check_int("n", n, 1, max_n)
        seed = check_int("seed", seed, 0, MAX_SEED)
        truncation = check_truncation(truncation)
        size = check_size(size)
        z, gen = self.latents(n, seed, truncation)
        return self._render(z, self._conditions(genres, n, gen), size)

    def morph(self, genres_a: Sequence[str] = (), genres_b: Sequence[str] = (), seed_a: int = 0, seed_b: int = 0,
              steps: int = 8, size: str = "native", truncation: float = 0.7) -> list[Image.Image]:
        """`steps` posters interpolating from (genres_a, seed_a) to (genres_b, seed_b): slerp of z, linear genre weights."""
        genres_a, genres_b = G.parse_genres(genres_a), G.parse_genres(genres_b)
        seed_a = check_int("seed_a", seed_a, 0, MAX_SEED)
        seed_b = check_int("seed_b", seed_b, 0, MAX_SEED)
        steps = check_int("steps", steps, 2, MAX_MORPH_STEPS)
        truncation = check_truncation(truncation)
        size = check_size(size)
        za, gen_a = self.latents(1, seed_a, truncation)
        zb, gen_b = self.latents(1, seed_b, truncation)
        ca, cb = self._conditions(genres_a, 1, gen_a), self._conditions(genres_b, 1, gen_b)
        # interpolate the normalised genre weights so "A" -> "A+B" moves smoothly
        ca, cb = _norm_condition(ca), _norm_condition(cb)
        ts = [i / (steps - 1) for i in range(steps)]
        z = torch.cat([slerp(za, zb, t) for t in ts])
        c = torch.cat([(1 - t) * ca + t * cb for t in ts])
        return self._render(z, c, size)


# ----------------------------------------------------------------------------------------------- CLI
def _cmd_generate(args) -> int:
    genres = G.parse_genres(args.genres or [])  # unknown names fail before the model loads
    check_int("n", args.n, 1, MAX_N_CLI), check_truncation(args.truncation), check_size(args.size)
    gen = PosterGenerator.load(directory=args.checkpoint)
    imgs = gen.generate(genres, n=args.n, seed=args.seed, truncation=args.truncation, size=args.size,
                        max_n=MAX_N_CLI)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "-".join(genres) or "any"
    paths = []
    for i, im in enumerate(imgs):
        p = out / f"{tag}_seed{args.seed}_{i:02d}.png"
        im.save(p)
        paths.append(str(p))
    print(json.dumps({"arch": gen.arch, "native_size": list(gen.native_size), "size": args.size, "files": paths}))
    return 0


def _cmd_evaluate(args) -> int:
    from .gan_metrics import evaluate_generator

    result = evaluate_generator(args.images, args.labels, split=args.split, n_per_genre=args.n_per_genre,
                                checkpoint=args.checkpoint, truncation=args.truncation, seed=args.seed,
                                images_root=args.data_images)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(text)
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser("generate", help="generate posters for a genre set",
                       description="Write N generated posters (PNG) for the given genres (none = any genre).")
    p.add_argument("--genres", nargs="*", default=[], metavar="G", help=f"genre names ({', '.join(G.GENRES)})")
    p.add_argument("--n", type=int, default=8, help=f"number of posters (1..{MAX_N_CLI})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=0.7, help="0 < psi <= 1 (lower = safer, less varied)")
    p.add_argument("--size", default="native", help="native or 400x600")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint", default=None, help="generator checkpoint folder (default checkpoints/generator)")
    p.set_defaults(func=_cmd_generate)

    e = sub.add_parser("evaluate-generator", help="KID/FID, conditional accuracy and diversity of generated posters",
                       description="Score generated posters in DIR/<Genre>/*.png against the real posters of each "
                                   "genre. With --checkpoint, first generate --n-per-genre posters per genre into DIR.")
    e.add_argument("--images", required=True, help="folder with one sub-folder of PNGs per genre")
    e.add_argument("--labels", required=True, help="labels.csv of the real posters (images/ beside it)")
    e.add_argument("--split", default="val")
    e.add_argument("--n-per-genre", type=int, default=100)
    e.add_argument("--checkpoint", default=None, help="generator checkpoint folder to sample from first")
    e.add_argument("--truncation", type=float, default=1.0, help="truncation used when sampling (default 1.0)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data-images", default=None, help="real poster folder (default <labels dir>/images)")
    e.add_argument("--json-out", default=None, help="also write the JSON here")
    e.set_defaults(func=_cmd_evaluate)
