"""`Dreamer`: run the poster classifier backwards.

- `genre_dream(genres, image=None)`: a picture the classifier sees as the genre(s), optimised from noise (or from
  the user's picture) with the feature-visualisation recipe of render.py: decorrelated Fourier parametrisation,
  a new random jitter / scale / rotation / crop each step (`VIEWS` views per step), octaves from coarse to fine.
  Several genres: the soft minimum of their logits is raised, so every ticked genre must show.
- `deep_dream(image, layer, genres=None)`: classic deep dream on a picture (deepdream.py) for a VGG-19 layer
  ("relu4_2" ...) or a stage of the classifier ("classifier.block4" ...), optionally steered toward genres.
- `dream(...)`: the CLI's and the API's dispatch: no picture = genre dream; a picture and a layer = deep dream
  (steered when genres are given too); a picture and genres only = genre dream starting from the picture.

Only the classifier is in the objective: the second judge of evaluate.py (a linear probe on VGG-19 features) never
sees it. Arguments are checked once, in `check_inputs`; limits are class attributes. Previews reach `progress` at
most every PREVIEW_S seconds; a set `cancel` event stops a run and returns the picture so far (with a note).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from .. import genres as G
from ..backbones import VGG_LAYERS, shared_vgg19
from ..checks import check_choice, check_float, check_int, check_size
from ..classify import Classifier
from ..data import IMAGENET_MEAN, IMAGENET_STD
from ..errors import InvalidArgumentError
from ..images import ImageInput, fit_image, image_notes, load_image, needs_fitting, to_pil, to_tensor, with_notes
from .deepdream import deep_dream
from .render import FourierImage, PreviewTimer, Progress, logit, octave_sizes, optimise, random_view

_UNSET: Any = object()

VGG_DREAM_LAYERS = tuple(l for l in VGG_LAYERS[: VGG_LAYERS.index("relu5_1") + 1] if l.startswith("relu"))
CLASSIFIER_STAGES = 7  # timm EfficientNet-Lite0 block stages


def classifier_layers() -> tuple[str, ...]:
    return tuple(f"classifier.block{i}" for i in range(CLASSIFIER_STAGES))


class Dreamer:
    """The Dream service (see the module docstring)."""

    MIN_SIDE, MAX_SIDE = 64, 1024
    SIZES = ("400x600", "512x768", "683x1024", "picture", "picture-1024")  # offered; any WxH in range accepted
    DEFAULT_SIZE = "400x600"
    PICTURE_LONG_SIDE = 600      # size "picture": the picture's own shape at this long side ("picture-N": N)
    DEFAULT_STEPS, MAX_STEPS = 160, 1000                  # genre dream
    DEFAULT_ITERATIONS, MAX_ITERATIONS = 8, 100           # deep dream, per octave
    DEFAULT_OCTAVES, MAX_OCTAVES = 4, 8                   # deep dream (a genre dream picks its own: octaves_for)
    DEFAULT_SCALE, MIN_SCALE, MAX_SCALE = 1.4, 1.1, 2.0   # deep dream octave scale
    DEEP_BUDGET = 100 * 683 * 1024                        # deep dream: iterations x octaves x pixels it may cost
    MAX_SEED = 2 ** 31 - 1
    DEFAULT_LAYER = "classifier.block4"  # ~2 s for a 600 px picture; VGG-19 layers take ~10x longer
    VIEWS = 2                    # random views per genre-dream step
    LR = 0.05                    # genre dream: Adam's step at strength 1
    DEEP_STEP = 0.012            # deep dream: step (in [0, 1] pixel units) at strength 1
    STEER = 1.0                  # deep dream: weight of the genre pull (both gradients normalised)
    PREVIEW_S = 2.0

    def __init__(self, classifier: Classifier):
        self.classifier = classifier
        self.model = classifier.model.primary_network  # an ensemble dreams through its primary member
        self.genres = classifier.genres
        self.layers = VGG_DREAM_LAYERS + classifier_layers()

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None) -> "Dreamer":
        """A Dreamer over the shipped classifier (`directory`: a classifier checkpoint folder)."""
        return cls(Classifier.load(hub_repo=hub_repo, directory=directory))

    @property
    def device(self) -> torch.device:
        return self.classifier.device

    # -- arguments
    def check_inputs(self, *, genres: Any = _UNSET, image: Any = _UNSET, layer: Any = _UNSET, size: Any = _UNSET,
                     steps: Any = _UNSET, iterations: Any = _UNSET, octaves: Any = _UNSET, scale: Any = _UNSET,
                     strength: Any = _UNSET, seed: Any = _UNSET) -> dict:
        """Validated arguments (only those given): genres -> labels ([] for none), image -> RGB PIL or None,
        layer -> name or None, size -> (W, H) or ("picture", long side), steps, iterations, octaves, scale,
        strength, seed. InvalidArgumentError / InvalidImageError with one line otherwise."""
        out: dict = {}
        if genres is not _UNSET:
            out["genres"] = G.parse_genres(genres)
        if image is not _UNSET:
            out["image"] = None if image is None or image == "" else load_image(image)
        if layer is not _UNSET:
            out["layer"] = None if layer is None or str(layer).strip() in ("", "none") else \
                check_choice("Layer", layer, self.layers)
        if size is not _UNSET:
            out["size"] = self._check_size(size)
        if steps is not _UNSET:
            out["steps"] = check_int("Steps", steps, 1, self.MAX_STEPS)
        if iterations is not _UNSET:
            out["iterations"] = check_int("Iterations", iterations, 1, self.MAX_ITERATIONS)
        if octaves is not _UNSET:
            out["octaves"] = check_int("Octaves", octaves, 1, self.MAX_OCTAVES)
        if scale is not _UNSET:
            out["scale"] = check_float("Octave scale", scale, self.MIN_SCALE, self.MAX_SCALE)
        if strength is not _UNSET:
            out["strength"] = check_float("Strength", strength, 0.0, 1.0)
        if seed is not _UNSET:
            out["seed"] = check_int("Seed", seed, 0, self.MAX_SEED)
        return out

    def _check_size(self, size: Any):
        text = str(size).strip().lower() if isinstance(size, str) else None
        if text is not None and text.startswith("picture"):
            rest = text[len("picture"):].lstrip("-: ")
            long_side = check_int("Size (long side)", rest, self.MIN_SIDE, self.MAX_SIDE) if rest \
                else self.PICTURE_LONG_SIDE
            return ("picture", long_side)
        return check_size("Size", size, self.MIN_SIDE, self.MAX_SIDE)

    def _resolve_size(self, size, image: Optional[Image.Image]) -> tuple[int, int]:
        if size[0] != "picture":
            return size
        if image is None:
            raise InvalidArgumentError("Size 'picture' follows your picture's shape: upload a picture or choose a "
                                       "size such as 400x600.")
        long_side = size[1]
        k = long_side / max(image.size)
        return max(self.MIN_SIDE, round(image.width * k)), max(self.MIN_SIDE, round(image.height * k))

    # -- the classifier as an objective
    def _logits(self, views: torch.Tensor) -> torch.Tensor:
        return self.model(TF.normalize(views, IMAGENET_MEAN, IMAGENET_STD))

    def _genre_score(self, genres: Sequence[str]) -> Callable[[torch.Tensor], torch.Tensor]:
        """views (B, 3, h, w) in [0, 1] -> per-view soft minimum of the genres' logits (one genre: its logit)."""
        idx = [self.genres.index(g) for g in genres]

        def score(views: torch.Tensor) -> torch.Tensor:
            return -torch.logsumexp(-self._logits(views)[:, idx], dim=1)
        return score

    def _classifier_scale(self, x: torch.Tensor) -> torch.Tensor:
        """x resized (aspect kept) to the classifier's input area: it judges a picture of any shape, at its scale."""
        h0, w0 = self.model.image_size
        k = (h0 * w0 / (x.shape[-2] * x.shape[-1])) ** 0.5
        size = (max(32, round(x.shape[-2] * k)), max(32, round(x.shape[-1] * k)))
        return F.interpolate(x, size=size, mode="bilinear", antialias=k < 1, align_corners=False)

    def layer_loss(self, layer: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """picture -> mean squared activation of `layer` (the value deep dream raises)."""
        if layer.startswith("classifier.block"):
            block = int(layer[len("classifier.block"):])
            return lambda x: self.model.block_output(TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD), block).pow(2).mean()
        vgg = shared_vgg19()
        return lambda x: vgg(x.to(vgg.device), [layer])[layer].pow(2).mean()

    # -- genre dream
    @staticmethod
    def octaves_for(width: int, height: int) -> int:
        """Genre dream octaves (factor 2): one below 400 px on the long side, two below 800, else three."""
        side = max(width, height)
        return 1 + (side >= 400) + (side >= 800)

    def genre_dream(self, genres: Any, *, image: Optional[ImageInput] = None, size: Any = DEFAULT_SIZE,
                    steps: Any = DEFAULT_STEPS, strength: Any = 1.0, seed: Any = 0, progress: Progress = None,
                    cancel: Optional[threading.Event] = None) -> Image.Image:
        """A picture (PIL, at `size`) that the classifier sees as every genre in `genres`; from noise, or from
        `image` (cropped to the size's shape). `image_notes(result)` says what was decided for the user."""
        a = self.check_inputs(genres=genres, image=image, size=size, steps=steps, strength=strength, seed=seed)
        if not a["genres"]:
            raise InvalidArgumentError("Choose at least one genre to dream of.")
        return self._genre_dream(a, progress, cancel)

    def _genre_dream(self, a: dict, progress: Progress, cancel: Optional[threading.Event]) -> Image.Image:
        pic = a.get("image")
        w, h = self._resolve_size(a["size"], pic)
        notes = image_notes(pic) if pic is not None else []
        base = None
        if pic is not None:
            if needs_fitting(pic, w, h):
                notes.append(f"Your {pic.width}x{pic.height} picture was centre-cropped to {w}x{h}.")
            start = to_tensor(fit_image(pic, (w, h), "crop"))[None].to(self.device)
        gen = torch.Generator().manual_seed(a["seed"])
        score = self._genre_score(a["genres"])
        in_size = self.model.image_size
        sizes = octave_sizes(h, w, self.octaves_for(w, h), factor=2.0)
        per = _split(a["steps"], len(sizes))
        timer = PreviewTimer(progress, a["steps"], self.PREVIEW_S)
        lr = self.LR * a["strength"]
        x, done = None, 0

        def objective(img: torch.Tensor, _step: int) -> torch.Tensor:
            views = torch.cat([random_view(img, in_size, gen) for _ in range(self.VIEWS)])
            return -score(views).mean()

        for (oh, ow), n in zip(sizes, per):
            if x is not None:
                base = logit(F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False))
            elif pic is not None:
                base = logit(F.interpolate(start, size=(oh, ow), mode="bilinear", antialias=True,
                                           align_corners=False))
            param = FourierImage(oh, ow, base=base, generator=gen).to(self.device)
            x, n_done = optimise(param, objective, n if lr > 0 else 0, lr=max(lr, 1e-8), progress=timer,
                                 cancel=cancel)
            done += n_done
            if cancel is not None and cancel.is_set():
                break
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        if cancel is not None and cancel.is_set() and done < a["steps"]:
            notes.append(f"Cancelled after {done} of {a['steps']} steps: this is the dream so far.")
        timer(done, x, final=True)
        return with_notes(to_pil(x.clamp(0, 1).cpu()), notes)

    # -- deep dream
    def deep_dream(self, image: Any, *, layer: Any = DEFAULT_LAYER, genres: Any = None, size: Any = "picture",
                   iterations: Any = DEFAULT_ITERATIONS, octaves: Any = DEFAULT_OCTAVES, scale: Any = DEFAULT_SCALE,
                   strength: Any = 1.0, seed: Any = 0, progress: Progress = None,
                   cancel: Optional[threading.Event] = None) -> Image.Image:
        """Deep dream on `image` for `layer`, optionally steered toward `genres` (PIL at `size`; "picture" = the
        picture's own shape, long side PICTURE_LONG_SIDE)."""
        a = self.check_inputs(image=image, layer=layer, genres=genres, size=size, iterations=iterations,
                              octaves=octaves, scale=scale, strength=strength, seed=seed)
        if a["image"] is None:
            raise InvalidArgumentError("Deep dream works on a picture: upload one first.")
        if a["layer"] is None and not a["genres"]:
            raise InvalidArgumentError("Choose a layer to dream with (or a genre to steer toward).")
        return self._deep_dream(a, progress, cancel)

    def _deep_dream(self, a: dict, progress: Progress, cancel: Optional[threading.Event]) -> Image.Image:
        pic = a["image"]
        w, h = self._resolve_size(a["size"], pic)
        cost = a["iterations"] * a["octaves"] * w * h
        if cost > self.DEEP_BUDGET:
            raise InvalidArgumentError(
                f"A deep dream of {a['iterations']} iterations x {a['octaves']} octaves at {w}x{h} is too costly for "
                f"this server: use at most {max(1, self.DEEP_BUDGET // (a['octaves'] * w * h))} iterations at that "
                f"size (iterations x octaves x pixels <= 100 x 683x1024).")
        notes = image_notes(pic)
        if needs_fitting(pic, w, h):
            notes.append(f"Your {pic.width}x{pic.height} picture was centre-cropped to {w}x{h}.")
        x0 = to_tensor(fit_image(pic, (w, h), "crop"))[None].to(self.device)
        losses = []
        if a["layer"] is not None:
            losses.append((self.layer_loss(a["layer"]), 1.0))
        if a["genres"]:
            score = self._genre_score(a["genres"])
            losses.append((lambda x: score(self._classifier_scale(x)).mean(),
                           self.STEER if a["layer"] is not None else 1.0))
        timer = PreviewTimer(progress, 1, self.PREVIEW_S)

        def on_step(done: int, total: int, x: torch.Tensor) -> None:
            timer.total = total
            timer(done, x)

        gen = torch.Generator().manual_seed(a["seed"])
        out, finished = deep_dream(x0, losses, octaves=a["octaves"], scale=a["scale"], iterations=a["iterations"],
                                   step=self.DEEP_STEP * a["strength"], generator=gen, progress=on_step,
                                   cancel=cancel)
        if not finished:
            notes.append("Cancelled: this is the dream so far.")
        timer(0, out, final=True)
        return with_notes(to_pil(out.clamp(0, 1).cpu()), notes)

    # -- one entry point for the CLI and the API
    def dream(self, genres: Any = None, *, image: Optional[ImageInput] = None, layer: Any = None,
              size: Any = None, steps: Any = DEFAULT_STEPS, iterations: Any = DEFAULT_ITERATIONS,
              octaves: Any = DEFAULT_OCTAVES, scale: Any = DEFAULT_SCALE, strength: Any = 1.0, seed: Any = 0,
              progress: Progress = None, cancel: Optional[threading.Event] = None) -> Image.Image:
        """No picture: a genre dream. A picture and a layer: deep dream (steered toward the genres if any). A
        picture and genres without a layer: a genre dream that starts from the picture."""
        a = self.check_inputs(genres=genres, image=image, layer=layer, strength=strength, seed=seed)
        pic = a["image"]
        if not a["genres"] and a["layer"] is None:
            raise InvalidArgumentError("Choose a genre to dream of, or a layer to deep-dream your picture with.")
        if a["layer"] is not None:
            if pic is None:
                raise InvalidArgumentError("Deep dream with a layer works on a picture: upload one (or drop the "
                                           "layer for a genre dream from noise).")
            a.update(self.check_inputs(size=size or "picture", iterations=iterations, octaves=octaves, scale=scale))
            return self._deep_dream(a, progress, cancel)
        a.update(self.check_inputs(size=size or self.DEFAULT_SIZE, steps=steps))
        return self._genre_dream(a, progress, cancel)


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
