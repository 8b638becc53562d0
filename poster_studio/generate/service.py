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
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .. import genres as G
from .. import hub
from ..checks import check_choice, check_float, check_int
from ..device import default_device
from ..errors import CheckpointError, InvalidArgumentError
from ..images import to_pils
from ..progress import Steps
from ..upscale import Upscaler
from .latent import LATENT_CHECKPOINT, LatentGenerator
from .model import ARCHS, CHECKPOINT_NAME, GenerativeNet, norm_condition
from .title import MAX_CREDITS, MAX_TAGLINE, MAX_TITLE
from .typography import TYPOGRAPHY, PosterTypesetter

log = logging.getLogger(__name__)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return (1 - t) * a + t * b
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def load_net(directory: Optional[str | Path] = None, hub_repo: Optional[str] = None,
             name: str = CHECKPOINT_NAME) -> GenerativeNet:
    """Load a generator checkpoint folder of any arch (config.json `arch`): `name` is its folder in checkpoints/ or
    on the Hub (generator: the instant GAN, generator-latent: the latent engine)."""
    folder = hub.resolve(name, hub_repo=hub_repo, directory=directory)
    config = folder / "config.json"
    arch = "ours"
    if config.is_file():
        try:
            arch = json.loads(config.read_text()).get("arch", "ours")
        except (ValueError, UnicodeDecodeError, AttributeError):
            pass  # load_model reports the corrupt config
    classes = {**{name: pair[0] for name, pair in ARCHS.items()}, LatentGenerator.arch: LatentGenerator}
    if arch not in classes:
        raise CheckpointError(f"{config}: unknown generator arch {arch!r} (expected one of {sorted(classes)}).")
    return hub.load_model(classes[arch], name, directory=folder)


ENGINES = ("latent", "instant")  # the default first: Generate v3's latent engine, then the instant GAN
ENGINE_CHECKPOINTS = {"latent": LATENT_CHECKPOINT, "instant": CHECKPOINT_NAME}


def engine_of(net: GenerativeNet) -> str:
    return "latent" if net.arch == LatentGenerator.arch else "instant"


def _seed_of(z: torch.Tensor) -> int:
    """A seed derived from the noise itself, so what follows a draw (redraws, guidance views) repeats with it."""
    return int(z.abs().sum().item() * 1e6) % (2**31)


_UNSET: Any = object()  # check_inputs: "argument not given" (None is a value the user can send: a cleared field)


class PosterGenerator:
    """Poster generation service over one or two engines: "latent" (Generate v3: flow-matching prior over frozen
    EfficientNet-Lite1 features + decoder, latent.py; the default when installed) and "instant" (the GAN of any
    other arch). Each method takes `engine` (None: the default); `net`, `arch` and `native_size` are the default's.
    The latent engine's posters are checked for novelty (novelty.py) when a checker is given: one too close to a
    training poster is redrawn (seeded, so the same arguments still give the same posters)."""

    MAX_COUNT = 16
    MAX_SEED = 2**31 - 1
    MIN_MORPH_STEPS, MAX_MORPH_STEPS = 2, 16
    SIZES = ("native", "400x600")
    MAX_TITLE, MAX_TAGLINE, MAX_CREDITS = MAX_TITLE, MAX_TAGLINE, MAX_CREDITS
    TYPOGRAPHY = TYPOGRAPHY  # "none" | "title" (the typed one) | "invented" (typography.py)
    UPSCALED_SIZE = (400, 600)  # (W, H)
    ENGINES = ENGINES
    NOVELTY_TRIES = 3  # redraws of a poster that is too close to a training poster
    MAX_GUIDANCE = 30  # classifier-guidance steps (latent engine, guidance.py)

    def __init__(self, net: Optional[GenerativeNet] = None, device: Optional[torch.device] = None,
                 upscaler: Optional[Upscaler] = None, typesetter: Optional[PosterTypesetter] = None,
                 engines: Optional[dict[str, GenerativeNet]] = None, novelty: Any = None, guidance: Any = None):
        self.typesetter = typesetter or PosterTypesetter()  # its title model (checkpoints/titles) loads on first use
        self.device = device or default_device()
        given = dict(engines or {})
        if net is not None:
            given.setdefault(engine_of(net), net)
        if not given:
            raise CheckpointError("No generator engine to serve: train one (train/train_generator.py or "
                                  "train/train_latent.py).")
        self.nets = {e: given[e].eval().requires_grad_(False).to(self.device) for e in ENGINES if e in given}
        # the latent engine is the default once its checkpoint is marked `preferred` (train_latent.py --stage export
        # --preferred: when it beats the instant GAN under the judge that never took part); until then it is opt-in
        latent = self.nets.get("latent")
        self.default_engine = "latent" if latent is not None and (getattr(latent, "preferred", False)
                                                                  or "instant" not in self.nets) else "instant"
        self.net = net = self.nets[self.default_engine]
        self.novelty = novelty  # NoveltyCheck or None
        self.guidance = guidance  # ClassifierGuidance or None (then guidance steps are refused with a reason)
        self.novelty_redraws = 0  # posters redrawn for novelty since the service started (reported by evaluation)
        self.upscaler = upscaler  # 400x600 output: the learned upscaler when given, else Lanczos
        self.genres = tuple(getattr(net, "genres", None) or G.GENRES)  # the checkpoint's own genre order
        prior = getattr(net, "genre_prior", None) or {g: 1.0 / len(self.genres) for g in self.genres}
        keys = list(prior)
        self._prior_vectors = torch.stack([self.encode(k.split("|")) for k in keys])
        self._prior_probs = torch.tensor([float(prior[k]) for k in keys], dtype=torch.float64)

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None,
             upscaler_directory: Optional[str | Path] = None, latent_directory: Optional[str | Path] = None,
             novelty: bool = True) -> "PosterGenerator":
        """The engines with the learned upscaler (checkpoints/upscaler) when there is one. `directory`: that one
        generator folder (any arch) and, with `latent_directory`, the latent engine too; neither: both standard
        checkpoints (generator, generator-latent), each optional as long as one is there. `novelty`: the latent
        engine's novelty check (the classifier's embeddings index) when its checkpoint has a threshold."""
        try:
            upscaler = Upscaler.load(directory=upscaler_directory, hub_repo=hub_repo)
        except Exception as exc:  # optional: without it 400x600 is Lanczos resampling
            log.info("no learned upscaler (%s): 400x600 posters are Lanczos-resampled", str(exc).splitlines()[0])
            upscaler = None
        nets: dict[str, GenerativeNet] = {}
        if directory is not None:
            one = load_net(directory=directory, hub_repo=hub_repo)
            nets[engine_of(one)] = one
            if latent_directory is not None:
                nets["latent"] = load_net(directory=latent_directory, hub_repo=hub_repo, name=LATENT_CHECKPOINT)
        else:
            errors = []
            for engine, name in ENGINE_CHECKPOINTS.items():
                try:
                    nets[engine] = load_net(hub_repo=hub_repo, name=name, directory=latent_directory
                                            if engine == "latent" else None)
                except CheckpointError as exc:
                    errors.append(exc)
                    log.info("no %s engine: %s", engine, str(exc).splitlines()[0])
            if not nets:
                raise errors[-1]
        checker = guide = None
        latent = nets.get("latent")
        if latent is not None:  # the classifier: the novelty check and classifier guidance of the latent engine
            try:
                from ..classify import Classifier
                from .guidance import ClassifierGuidance
                from .novelty import NoveltyCheck

                clf = Classifier.load(hub_repo=hub_repo)
                guide = ClassifierGuidance(clf, repel=getattr(latent, "novelty_threshold", None))
                if novelty and getattr(latent, "novelty_threshold", None):
                    checker = NoveltyCheck(clf, latent.novelty_threshold)
            except Exception as exc:  # no classifier: posters are served unchecked, and the log says so
                log.warning("latent engine without its novelty check and guidance: %s", str(exc).splitlines()[0])
        return cls(engines=nets, upscaler=upscaler, typesetter=PosterTypesetter(hub_repo=hub_repo), novelty=checker,
                   guidance=guide)

    @property
    def engines(self) -> tuple[str, ...]:
        """The installed engines, the default first."""
        return tuple(self.nets)

    @property
    def upscale_method(self) -> str:
        """What makes the 400x600 posters (said in the UI)."""
        return "learned upscaler" if self.upscaler is not None else "Lanczos"

    @property
    def native_size(self) -> tuple[int, int]:
        return self.net.native_size

    def native_sizes(self) -> dict[str, tuple[int, int]]:
        """Each installed engine's native (W, H)."""
        return {e: net.native_size for e, net in self.nets.items()}

    @property
    def morph_engine(self) -> str:
        """The engine the morph strip runs on: the instant GAN when installed (its z space morphs smoothly)."""
        return "instant" if "instant" in self.nets else self.default_engine

    @property
    def arch(self) -> str:
        return self.net.arch

    # -- arguments
    def check_inputs(self, *, genres: Any = _UNSET, n: Any = _UNSET, seed: Any = _UNSET, truncation: Any = _UNSET,
                     size: Any = _UNSET, steps: Any = _UNSET, title: Any = _UNSET, tagline: Any = _UNSET,
                     credits: Any = _UNSET, typography: Any = _UNSET, engine: Any = _UNSET,
                     guidance: Any = _UNSET) -> dict:
        """Validated arguments (only those given; None is a missing value, except genres None = any genre and
        engine None = the default engine); InvalidArgumentError with a one-line message otherwise."""
        out: dict = {}
        if engine is not _UNSET:
            if engine is None or engine == "":
                out["engine"] = self.default_engine
            else:
                name = check_choice("Engine", engine, ENGINES)
                if name not in self.nets:
                    raise InvalidArgumentError(
                        f"The {name} engine is not installed here (checkpoints/{ENGINE_CHECKPOINTS[name]} is missing); "
                        f"available: {', '.join(self.nets)}.")
                out["engine"] = name
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
        if guidance is not _UNSET:
            steps_ = 0 if guidance is None else check_int("Guidance steps", guidance, 0, self.MAX_GUIDANCE)
            engine_ = out.get("engine", self.default_engine)
            if steps_ and engine_ != "latent":
                raise InvalidArgumentError(f"Classifier guidance works on the latent engine only, not the {engine_} "
                                           "one: pick the latent engine or set guidance to 0.")
            if steps_ and self.guidance is None:
                raise InvalidArgumentError("Classifier guidance needs the classifier (checkpoints/classifier), which "
                                           "is not installed here: set guidance to 0.")
            out["guidance"] = steps_
        texts = {k: v for k, v in (("title", title), ("tagline", tagline), ("credits", credits),
                                   ("typography", typography)) if v is not _UNSET}
        out.update(self.typesetter.check_inputs(**texts))  # the typography arguments: typography.py
        return out

    # -- sampling (unchecked: evaluation and the checked methods below)
    def encode(self, genres: Sequence[str]) -> torch.Tensor:
        """Multi-hot vector in the checkpoint's genre order."""
        v = torch.zeros(len(self.genres))
        for g in genres:
            v[self.genres.index(G.parse_genre(g))] = 1.0
        return v

    def latents(self, n: int, seed: int, truncation: float,
                engine: Optional[str] = None) -> tuple[torch.Tensor, torch.Generator]:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.nets[engine or self.default_engine].z_dim, generator=gen) * truncation, gen

    def conditions(self, genres: Sequence[str], n: int, gen: torch.Generator) -> torch.Tensor:
        """n multi-hot conditions: the genre set, or (empty set) genre sets drawn from the training mix."""
        if genres:
            return self.encode(genres).expand(n, -1).clone()
        idx = torch.multinomial(self._prior_probs, n, replacement=True, generator=gen)
        return self._prior_vectors[idx]

    @torch.no_grad()
    def render(self, z: torch.Tensor, c: torch.Tensor, size: str = "native", engine: Optional[str] = None,
               guidance: int = 0, progress: Optional[Callable] = None,
               cancel: Optional[threading.Event] = None) -> list[Image.Image]:
        """Posters from noise z and conditions c (unchecked). Latent engine: `guidance` classifier-guidance steps;
        `progress(Steps)` after each prior and guidance step; `cancel` ends the guidance early (the posters as far
        as they got)."""
        engine = engine or self.default_engine
        if engine == "latent":
            imgs = self._latent_posters(z, c, guidance, progress, cancel)
            if self.novelty is not None:
                imgs = self._redraw_copies(imgs, z, c, guidance)
        else:
            imgs = to_pils(self.nets[engine](z.to(self.device), c.to(self.device)), (-1.0, 1.0))
        if size == "400x600":
            imgs = [self.upscaler.upscale(im, self.UPSCALED_SIZE) if self.upscaler is not None else
                    im.resize(self.UPSCALED_SIZE, Image.Resampling.LANCZOS) for im in imgs]
        return imgs

    def _latent_posters(self, z: torch.Tensor, c: torch.Tensor, guidance: int = 0, progress: Optional[Callable] = None,
                        cancel: Optional[threading.Event] = None) -> list[Image.Image]:
        """The latent engine: the prior's sample, then `guidance` steps (seeded by z: same z, same posters)."""
        net = self.nets["latent"]
        z, c = z.to(self.device), c.to(self.device)
        total = net.sample_steps + guidance

        def report(done: int) -> None:
            if progress is not None:
                progress(Steps(done, total))

        lat = net.sample_latents(z, c, callback=lambda i, n, x: report(i))
        if guidance:
            gen = torch.Generator().manual_seed(_seed_of(z))
            lat = self.guidance(net.decode, lat, c, guidance, gen, cancel=cancel,
                                callback=lambda i, n, x: report(net.sample_steps + i))
        return to_pils(net.decode(lat).clamp(0, 1))

    def _redraw_copies(self, imgs: list[Image.Image], z: torch.Tensor, c: torch.Tensor,
                       guidance: int = 0) -> list[Image.Image]:
        """Posters of the latent engine that are too close to a training poster, redrawn from fresh noise seeded by
        the first noise (deterministic); after NOVELTY_TRIES the last draw stays."""
        net = self.nets["latent"]
        imgs = list(imgs)
        bad = self.novelty.too_close(imgs)
        for attempt in range(self.NOVELTY_TRIES):
            idx = [i for i, b in enumerate(bad) if b]
            if not idx:
                break
            self.novelty_redraws += len(idx)
            gen = torch.Generator().manual_seed(_seed_of(z[idx[0]]) + attempt)
            z2 = torch.randn(len(idx), net.z_dim, generator=gen) * z[idx].std(1, keepdim=True)
            new = self._latent_posters(z2, c[idx], guidance)
            redo = self.novelty.too_close(new)
            for j, i in enumerate(idx):
                imgs[i] = new[j]
            bad = [False] * len(imgs)
            for j, i in enumerate(idx):
                bad[i] = bool(redo[j])
        return imgs

    # -- the service
    def generate(self, genres: Sequence[str] = (), n: int = 8, seed: int = 0, truncation: float = 0.7,
                 size: str = "native", engine: Optional[str] = None, guidance: int = 0,
                 progress: Optional[Callable] = None, cancel: Optional[threading.Event] = None) -> list[Image.Image]:
        """`n` posters for the genre set (empty = any genre) from `engine` (None: the default); same arguments ->
        identical images. `guidance`: classifier-guidance steps (latent engine; 0 = none); `progress(Steps)` is
        called after each step of the latent engine; `cancel` ends the guidance early."""
        a = self.check_inputs(genres=genres, n=n, seed=seed, truncation=truncation, size=size, engine=engine,
                              guidance=guidance)
        z, gen = self.latents(a["n"], a["seed"], a["truncation"], a["engine"])
        return self.render(z, self.conditions(a["genres"], a["n"], gen), a["size"], a["engine"], a["guidance"],
                           progress, cancel)

    def poster_genres(self, genres: Sequence[str], n: int, seed: int,
                      engine: Optional[str] = None) -> list[tuple[str, ...]]:
        """The genre set of each of the `n` posters generate(genres, n, seed) makes (an empty set: those drawn)."""
        a = self.check_inputs(genres=genres, seed=seed, engine=engine)
        if a["genres"]:
            return [tuple(a["genres"])] * n
        _, gen = self.latents(n, a["seed"], 1.0, a["engine"])  # the same draws as generate(): z first, then the sets
        return [tuple(g for g, v in zip(self.genres, row.tolist()) if v > 0) for row in self.conditions((), n, gen)]

    def typeset(self, images: Sequence[Image.Image], genres: Sequence[str] = (), title: str = "", tagline: str = "",
                credits: str = "", *, typography: Optional[str] = None, seed: int = 0,
                layout: Optional[int] = None, engine: Optional[str] = None) -> list[Image.Image]:
        """Copies of generate(genres, len(images), seed)'s posters with typography in their genre's layouts
        (typography.py): "title" = the typed title, tagline and credits; "invented" = an invented title, tagline,
        names, billing block and release line (what is typed replaces its invented part); "none" or (typography
        None) no title typed: the posters as they are. `layout` 0-2 picks the genre's layout (None: by seed)."""
        a = self.check_inputs(genres=genres, seed=seed, title=title, tagline=tagline, credits=credits,
                              typography=typography)
        if a["typography"] == "none":
            return list(images)
        sets = self.poster_genres(a["genres"], len(images), a["seed"], engine) if images else []
        return self.typesetter.typeset(images, a["genres"], typography=a["typography"], title=a["title"],
                                       tagline=a["tagline"], credits=a["credits"], seed=a["seed"], layout=layout,
                                       genre_sets=sets)

    def morph(self, genres_a: Sequence[str] = (), genres_b: Sequence[str] = (), seed_a: int = 0, seed_b: int = 0,
              steps: int = 8, size: str = "native", truncation: float = 0.7) -> list[Image.Image]:
        """`steps` posters from (genres_a, seed_a) to (genres_b, seed_b): slerp of z, linear genre weights; on the
        instant engine when installed (its z space morphs smoothly), else the default."""
        a = self.check_inputs(genres=genres_a, seed=seed_a, steps=steps, size=size, truncation=truncation)
        b = self.check_inputs(genres=genres_b, seed=seed_b)
        engine = self.morph_engine
        za, gen_a = self.latents(1, a["seed"], a["truncation"], engine)
        zb, gen_b = self.latents(1, b["seed"], a["truncation"], engine)
        # interpolate the normalised genre weights so "A" -> "A+B" moves smoothly
        ca = norm_condition(self.conditions(a["genres"], 1, gen_a))
        cb = norm_condition(self.conditions(b["genres"], 1, gen_b))
        ts = [i / (a["steps"] - 1) for i in range(a["steps"])]
        z = torch.cat([slerp(za, zb, t) for t in ts])
        c = torch.cat([(1 - t) * ca + t * cb for t in ts])
        return self.render(z, c, a["size"], engine)
