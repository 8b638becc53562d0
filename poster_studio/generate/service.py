"""`PosterGenerator`: the poster generation service over a trained generator of any arch.

`generate(genres, n, seed, truncation, size)` returns PIL posters; an empty genre list means "any genre": each
poster's genre set is drawn (seeded) from the training data's label mix stored in the checkpoint
(`genre_prior`). Truncation scales z (psi * z, psi in (0, 1]). "400x600" is Lanczos resampling of the native
poster. Genres are encoded in the checkpoint's own genre order. Arguments are checked once, in `check_inputs`;
its limits are the class attributes (the app's widgets take their ranges from them).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .. import genres as G
from .. import hub
from ..checks import check_choice, check_float, check_int
from ..device import default_device
from ..errors import CheckpointError, InvalidArgumentError
from ..images import to_pils
from ..upscale import Upscaler
from .model import ARCHS, CHECKPOINT_NAME, GenerativeNet, norm_condition
from .title import MAX_CREDITS, MAX_TAGLINE, MAX_TITLE, check_text, overlay_title

log = logging.getLogger(__name__)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return (1 - t) * a + t * b
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


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


_UNSET: Any = object()  # check_inputs: "argument not given" (None is a value the user can send: a cleared field)


class PosterGenerator:
    """Poster generation service over a trained generator (any arch)."""

    MAX_COUNT = 16
    MAX_SEED = 2**31 - 1
    MIN_MORPH_STEPS, MAX_MORPH_STEPS = 2, 16
    SIZES = ("native", "400x600")
    MAX_TITLE, MAX_TAGLINE, MAX_CREDITS = MAX_TITLE, MAX_TAGLINE, MAX_CREDITS
    UPSCALED_SIZE = (400, 600)  # (W, H)

    def __init__(self, net: GenerativeNet, device: Optional[torch.device] = None, upscaler: Optional[Upscaler] = None):
        self.device = device or default_device()
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.upscaler = upscaler  # 400x600 output: the learned upscaler when given, else Lanczos
        self.genres = tuple(getattr(net, "genres", None) or G.GENRES)  # the checkpoint's own genre order
        prior = getattr(net, "genre_prior", None) or {g: 1.0 / len(self.genres) for g in self.genres}
        keys = list(prior)
        self._prior_vectors = torch.stack([self.encode(k.split("|")) for k in keys])
        self._prior_probs = torch.tensor([float(prior[k]) for k in keys], dtype=torch.float64)

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None,
             upscaler_directory: Optional[str | Path] = None) -> "PosterGenerator":
        """The generator checkpoint, with the learned upscaler (checkpoints/upscaler) when there is one."""
        try:
            upscaler = Upscaler.load(directory=upscaler_directory, hub_repo=hub_repo)
        except Exception as exc:  # optional: without it 400x600 is Lanczos resampling
            log.info("no learned upscaler (%s): 400x600 posters are Lanczos-resampled", str(exc).splitlines()[0])
            upscaler = None
        return cls(load_net(directory=directory, hub_repo=hub_repo), upscaler=upscaler)

    @property
    def upscale_method(self) -> str:
        """What makes the 400x600 posters (said in the UI)."""
        return "learned upscaler" if self.upscaler is not None else "Lanczos"

    @property
    def native_size(self) -> tuple[int, int]:
        return self.net.native_size

    @property
    def arch(self) -> str:
        return self.net.arch

    # -- arguments
    def check_inputs(self, *, genres: Any = _UNSET, n: Any = _UNSET, seed: Any = _UNSET, truncation: Any = _UNSET,
                     size: Any = _UNSET, steps: Any = _UNSET, title: Any = _UNSET, tagline: Any = _UNSET,
                     credits: Any = _UNSET) -> dict:
        """Validated arguments (only those given; None is a missing value, except genres None = any genre);
        InvalidArgumentError with a one-line message otherwise."""
        out: dict = {}
        if genres is not _UNSET:
            out["genres"] = G.parse_genres(genres)
            missing = [g for g in out["genres"] if g not in self.genres]
            if missing:
                raise InvalidArgumentError(f"This generator was not trained on {', '.join(missing)}; it knows "
                                           f"{', '.join(self.genres)}.")
        if n is not _UNSET:
            out["n"] = check_int("Count", n, 1, self.MAX_COUNT)
        if seed is not _UNSET:
            out["seed"] = check_int("Seed", seed, 0, self.MAX_SEED)
        if truncation is not _UNSET:
            t = check_float("Truncation", truncation, 0.0, 1.0)
            if t <= 0.0:
                raise InvalidArgumentError(f"Truncation must be above 0 (and at most 1), got {truncation!r}.")
            out["truncation"] = t
        if size is not _UNSET:
            out["size"] = check_choice("Size", size, self.SIZES)
        if steps is not _UNSET:
            out["steps"] = check_int("Frames", steps, self.MIN_MORPH_STEPS, self.MAX_MORPH_STEPS)
        for key, value, limit in (("title", title, self.MAX_TITLE), ("tagline", tagline, self.MAX_TAGLINE),
                                  ("credits", credits, self.MAX_CREDITS)):
            if value is not _UNSET:
                out[key] = check_text(key.capitalize(), value, limit, required_letters=key == "title")
        return out

    # -- sampling (unchecked: evaluation and the checked methods below)
    def encode(self, genres: Sequence[str]) -> torch.Tensor:
        """Multi-hot vector in the checkpoint's genre order."""
        v = torch.zeros(len(self.genres))
        for g in genres:
            v[self.genres.index(G.parse_genre(g))] = 1.0
        return v

    def latents(self, n: int, seed: int, truncation: float) -> tuple[torch.Tensor, torch.Generator]:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.net.z_dim, generator=gen) * truncation, gen

    def conditions(self, genres: Sequence[str], n: int, gen: torch.Generator) -> torch.Tensor:
        """n multi-hot conditions: the genre set, or (empty set) genre sets drawn from the training mix."""
        if genres:
            return self.encode(genres).expand(n, -1).clone()
        idx = torch.multinomial(self._prior_probs, n, replacement=True, generator=gen)
        return self._prior_vectors[idx]

    @torch.no_grad()
    def render(self, z: torch.Tensor, c: torch.Tensor, size: str = "native") -> list[Image.Image]:
        imgs = to_pils(self.net(z.to(self.device), c.to(self.device)), (-1.0, 1.0))
        if size == "400x600":
            imgs = [self.upscaler.upscale(im, self.UPSCALED_SIZE) if self.upscaler is not None else
                    im.resize(self.UPSCALED_SIZE, Image.Resampling.LANCZOS) for im in imgs]
        return imgs

    # -- the service
    def generate(self, genres: Sequence[str] = (), n: int = 8, seed: int = 0, truncation: float = 0.7,
                 size: str = "native") -> list[Image.Image]:
        """`n` posters for the genre set (empty = any genre); same arguments -> identical images."""
        a = self.check_inputs(genres=genres, n=n, seed=seed, truncation=truncation, size=size)
        z, gen = self.latents(a["n"], a["seed"], a["truncation"])
        return self.render(z, self.conditions(a["genres"], a["n"], gen), a["size"])

    def typeset(self, images: Sequence[Image.Image], genres: Sequence[str] = (), title: str = "", tagline: str = "",
                credits: str = "") -> list[Image.Image]:
        """Copies of the posters with the title, tagline and credits line typeset in the first genre's style (see
        title.py); an empty title leaves them as they are."""
        a = self.check_inputs(genres=genres, title=title, tagline=tagline, credits=credits)
        if not a["title"]:
            return list(images)
        return [overlay_title(im, a["title"], a["tagline"], a["credits"], a["genres"]) for im in images]

    def morph(self, genres_a: Sequence[str] = (), genres_b: Sequence[str] = (), seed_a: int = 0, seed_b: int = 0,
              steps: int = 8, size: str = "native", truncation: float = 0.7) -> list[Image.Image]:
        """`steps` posters from (genres_a, seed_a) to (genres_b, seed_b): slerp of z, linear genre weights."""
        a = self.check_inputs(genres=genres_a, seed=seed_a, steps=steps, size=size, truncation=truncation)
        b = self.check_inputs(genres=genres_b, seed=seed_b)
        za, gen_a = self.latents(1, a["seed"], a["truncation"])
        zb, gen_b = self.latents(1, b["seed"], a["truncation"])
        # interpolate the normalised genre weights so "A" -> "A+B" moves smoothly
        ca = norm_condition(self.conditions(a["genres"], 1, gen_a))
        cb = norm_condition(self.conditions(b["genres"], 1, gen_b))
        ts = [i / (a["steps"] - 1) for i in range(a["steps"])]
        z = torch.cat([slerp(za, zb, t) for t in ts])
        c = torch.cat([(1 - t) * ca + t * cb for t in ts])
        return self.render(z, c, a["size"])
