"""`GenreTransfer`: restyle any picture as a genre's poster, from exemplar posters the classifier picked (or from
the user's own style images).

Engines (engines.py): "fast" = AdaIN with the decoder trained here; the result then gets the exemplars' pixel
colour mean/covariance (blended by strength), and `fast_detail` (0.3) of the colour-matched content is mixed back
in because the CPU-trained decoder reproduces little detail (FAST_COLOR_MATCH, FAST_DETAIL). "quality" = Gatys multi-style optimisation (minutes;
previews through `progress`, stops when `cancel` is set). Colour preservation keeps the content's chroma.

"translate" = poster -> poster of another genre by one multi-genre network (translate.py, checkpoints/translator,
optional): the picture is fitted to 2:3 as for the other engines and translated at the network's native size
(about 96x144); a grading translator (the shipped design) applies its colour-grade coefficients, found at that
size, to the full-size picture's own pixels; an older residual translator's change is enlarged and added to the
full-size picture (TRANSLATE_ENLARGE "residual"; "upscale" enlarges the translation itself by the learned upscaler
when checkpoints/upscaler is there, else Lanczos); strength blends the translation with the picture.

"bridge" = any picture -> a poster of another genre through Generate's latent engine (bridge.py; optional, present
when checkpoints/generator-latent is): the prior's flow run backwards from the picture's latent under no genre,
then forwards under the target genre, and the decoder's change added to the picture; no network was trained for
it, and neither judge takes part.

Arguments are checked once, in `check_inputs`; its limits are the class attributes. The fast engine serves many
requests at once; the quality engine runs one job at a time (QUALITY_SLOTS) and refuses a second at once
(BusyError) instead of queueing it behind a job of minutes, and one job's cost is capped (QUALITY_BUDGET).
"""
from __future__ import annotations

import functools
import logging
import math
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from PIL import Image

from .. import genres as G
from .. import hub
from ..checks import check_bool, check_choice, check_float, check_int, check_size
from ..data import default_data_dir, read_labels
from ..device import default_device
from ..errors import BusyError, CheckpointError, InvalidArgumentError
from ..images import FIT_MODES, ImageInput, fit_image, image_notes, load_image, needs_fitting, to_pil, \
    to_tensor, with_notes
from ..backbones import shared_vgg19
from .engines import DEFAULT_STEPS, AdaINDecoder, FastEngine, GatysConfig, GatysEngine, Progress
from .bridge import LatentBridge
from .exemplars import ExemplarBank
from .style import ENCODER_LAYER, GenreStyle, blend_colors, blend_statistics, guided_filter, match_colors, \
    preserve_colors, style_statistics
from .translate import load_translator

CHECKPOINT_NAME = "transfer"
TRAIN_TRANSLATOR = ("python train/train_translator.py --data ../shared/data/posters --minutes 25, then "
                    "python train/train_translator.py --export checkpoints/translator")
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def poster_labels() -> dict[str, tuple[str, ...]]:
    """Poster id -> its genres, from the poster data's labels.csv ({} when the data is not on this machine)."""
    path = default_data_dir() / "labels.csv"
    try:
        return {r.id: tuple(r.genres) for r in read_labels(path)} if path.is_file() else {}
    except (OSError, InvalidArgumentError) as exc:
        log.info("no poster labels (%s): exemplars are listed without their genres", exc)
        return {}


class GenreTransfer:
    """Genre transfer service (see the module docstring)."""

    ENGINES = ("fast", "quality", "translate", "bridge")
    MIN_SIDE, MAX_SIDE = 64, 1024
    SIZES = ("256x384", "384x576", "512x768")  # offered in the app; any WxH within the sides is accepted
    MAX_STEPS = 500
    QUALITY_BUDGET = 500 * 512 * 768        # steps x output pixels one quality job may cost
    MAX_STYLE_IMAGES = 16
    QUALITY_SLOTS = 1
    FAST_COLOR_MATCH = True   # fast engine: give the result the exemplars' pixel colours (blended by strength)
    FAST_DETAIL = 0.3         # fast engine: share of the (colour-matched) content mixed back in
    FAST_SMOOTH = 1 / 48      # fast engine's clean-up: guided-filter radius / the picture's short side (0 = off)
    FAST_SMOOTH_EPS = 1e-3    # its regulariser (luma variance below which a window is "flat")
    TRANSLATE_ENLARGE = "residual"  # translate engine above its native size: "residual" or "upscale" (_translate)

    def __init__(self, decoder: AdaINDecoder, bank: Optional[ExemplarBank] = None,
                 gatys: Optional[GatysConfig] = None, translator: Optional[torch.nn.Module] = None,
                 upscaler=None, translator_missing: Optional[str] = None, bridge=None,
                 bridge_missing: Optional[str] = None):
        self.decoder = decoder.eval()
        self.bank = bank
        self.fast = FastEngine(self.decoder)
        self.quality = GatysEngine(gatys)
        self._quality_slots = threading.BoundedSemaphore(self.QUALITY_SLOTS)
        # translate engine (optional): a GenreTranslator / CycleGANPair, and the learned upscaler (else Lanczos)
        self.translator = None if translator is None else translator.eval().requires_grad_(False).to(default_device())
        self.upscaler = upscaler
        self.translator_missing = translator_missing or (
            f"The translate engine is not installed: train it with {TRAIN_TRANSLATOR}.")
        self.bridge = bridge  # bridge engine (optional): a LatentBridge over the latent generator
        self.bridge_missing = bridge_missing or (
            "The bridge engine needs Generate's latent engine (checkpoints/generator-latent), which this server does "
            "not have: train it with train/train_latent.py, or use the fast, quality or translate engine.")

    @classmethod
    def load(cls, hub_repo: Optional[str] = None, directory: Optional[str | Path] = None,
             translator_directory: Optional[str | Path] = None,
             bridge_directory: Optional[str | Path] = None) -> "GenreTransfer":
        """The transfer checkpoint (AdaIN decoder + exemplars), plus the translate engine when
        checkpoints/translator (or `translator_directory`) exists, and the bridge engine when
        checkpoints/generator-latent (or `bridge_directory`) does; without them the other engines work as before."""
        folder = hub.resolve(CHECKPOINT_NAME, hub_repo=hub_repo, directory=directory)
        decoder = hub.load_model(AdaINDecoder, CHECKPOINT_NAME, directory=folder)
        translator, missing, upscaler = None, None, None
        try:
            where = hub.resolve("translator", hub_repo=hub_repo, directory=translator_directory)
            if (where / "config.json").is_file():
                translator = load_translator(where)
                upscaler = _optional_upscaler(hub_repo)
        except Exception as exc:  # a broken translator must not take the other engines down
            missing = (f"The translate engine could not be loaded ({str(exc).splitlines()[0][:300]}): retrain or "
                       f"re-export it with {TRAIN_TRANSLATOR}.")
            log.warning(missing)
        bridge, bridge_missing = None, None
        try:
            bridge = LatentBridge.load(hub_repo=hub_repo, directory=bridge_directory)
        except Exception as exc:  # optional too: without it the other engines work as before
            bridge_missing = (f"The bridge engine needs Generate's latent engine, which could not be loaded "
                              f"({str(exc).splitlines()[0][:300]}): use the fast, quality or translate engine.")
            log.info(bridge_missing)
        return cls(decoder, ExemplarBank.load(folder), translator=translator, upscaler=upscaler,
                   translator_missing=missing, bridge=bridge, bridge_missing=bridge_missing)

    @property
    def translate_genres(self) -> tuple[str, ...]:
        """The genres the translate engine reaches (empty when it is not installed)."""
        return tuple(self.translator.genres) if self.translator is not None else ()

    # -- arguments
    def check_inputs(self, *, content: Any = None, genre: Any = None, engine: Any = "fast", strength: Any = 1.0,
                     size: Any = "384x576", steps: Any = None, style_images: Optional[Sequence[Any]] = None,
                     fit: Any = "crop", preserve_color: Any = False, clean: Any = True,
                     style_given: bool = False) -> dict:
        """All arguments of `transfer`, validated: InvalidArgumentError / InvalidImageError with one line.
        `style_given`: the caller brings precomputed statistics, so no genre or style image is needed."""
        engine = check_choice("Engine", engine, self.ENGINES)
        if engine == "translate" and self.translator is None:
            raise CheckpointError(self.translator_missing)
        if engine == "bridge" and self.bridge is None:
            raise CheckpointError(self.bridge_missing)
        w, h = check_size("Size", size, self.MIN_SIDE, self.MAX_SIDE)
        n_steps = None
        if engine == "quality":
            n_steps = DEFAULT_STEPS if steps in (None, "") else check_int("Steps", steps, 1, self.MAX_STEPS)
            if n_steps * w * h > self.QUALITY_BUDGET:
                raise InvalidArgumentError(
                    f"A quality transfer of {n_steps} steps at {w}x{h} is too costly for this server: at {w}x{h} use "
                    f"at most {self.QUALITY_BUDGET // (w * h)} steps (steps x pixels <= 500 x 512x768).")
        styles = [s for s in (style_images or []) if s is not None and s != ""]
        if len(styles) > self.MAX_STYLE_IMAGES:
            raise InvalidArgumentError(f"At most {self.MAX_STYLE_IMAGES} style images, got {len(styles)}.")
        if engine in ("translate", "bridge"):
            if styles:
                raise InvalidArgumentError(f"The {engine} engine takes a genre, not style images: use the fast or "
                                           "quality engine with your own style images.")
            if engine == "translate":
                g = self._translate_genre(genre)
            elif genre in (None, ""):
                raise InvalidArgumentError("Choose the genre to translate to.")
            else:
                g = G.parse_genre(genre)
        else:
            g = G.parse_genre(genre) if genre not in (None, "") else None
        if g is None and not styles and not style_given:
            raise InvalidArgumentError("Choose a genre (or upload your own style images).")
        if content is None:
            raise InvalidArgumentError("No picture: upload one (or pick an example) first.")
        return {"content": load_image(content), "genre": g, "engine": engine,
                "strength": check_float("Strength", strength, 0.0, 1.0), "size": (w, h), "steps": n_steps,
                "style_images": [load_image(s) for s in styles], "fit": check_choice("Fit", fit, FIT_MODES),
                "preserve_color": bool(preserve_color), "clean": check_bool("Clean", clean)}

    def _translate_genre(self, genre: Any) -> str:
        reach = self.translate_genres
        names = ", ".join(reach[:-1]) + f" and {reach[-1]}" if len(reach) > 1 else reach[0]
        if genre in (None, ""):
            raise InvalidArgumentError(f"Choose the genre to translate to: the translate engine reaches {names}.")
        try:
            g = G.parse_genre(genre)
        except InvalidArgumentError:
            raise InvalidArgumentError(f"Unknown genre {genre!r}: the translate engine reaches {names}.") from None
        if g not in reach:
            raise InvalidArgumentError(f"The translate engine reaches {names}, not {g}.")
        return g

    # -- exemplars
    def exemplars(self, genre: str) -> list[dict]:
        """The genre's exemplar posters: id, title, year and the poster's own genres (an exemplar of Romance may be
        Comedy + Romance); the genres come from the bank, or else from the labels of the poster data when it is
        there (banks built before they were recorded), else they are left empty."""
        g = G.parse_genre(genre)
        if self.bank is None:
            raise CheckpointError("No exemplar statistics loaded: run train/build_exemplars.py.")
        items = self.bank.style(g).exemplars
        known = {} if all("genres" in e for e in items) else poster_labels()
        return [{"id": e["id"], "title": e["title"], "year": e["year"],
                 "genres": list(e["genres"] if "genres" in e else known.get(e["id"], ()))} for e in items]

    def style_from_images(self, images: Sequence[ImageInput], grams: bool = True) -> GenreStyle:
        """Blended statistics (equal weights) of style images, as a genre's exemplars would give."""
        pils = [load_image(im) for im in images]
        stats = style_statistics(pils, shared_vgg19(), grams=grams)
        mean, std, gr = blend_statistics(stats)
        pm, pc = blend_colors(stats)
        ex = [{"id": f"user_{i}", "title": "your style image", "year": "", "weight": 1.0 / len(pils)}
              for i in range(len(pils))]
        return GenreStyle("custom", ex, mean, std, gr, pixel_mean=pm, pixel_cov=pc)

    # -- transfer
    def transfer(self, content: ImageInput, genre: Optional[str] = None, *, engine: str = "fast",
                 strength: float = 1.0, preserve_color: bool = False, size: Any = (384, 576),
                 style_images: Optional[Sequence[ImageInput]] = None, steps: Optional[int] = None,
                 fit: str = "crop", progress: Progress = None, cancel: Optional[threading.Event] = None,
                 color_match: Optional[bool] = None, style: Optional[GenreStyle] = None, clean: bool = True):
        """The restyled picture (PIL, at `size`). `image_notes(result)` says what was decided for the user (the
        picture cropped or fitted to 2:3, an animated image's first frame). `color_match` (default: on for the fast
        engine) gives the result the exemplars' pixel colours; `preserve_color` overrides it. `style`: precomputed
        statistics (e.g. from style_from_images) used instead of the genre's. engine="translate" needs a genre the
        translator reaches (`translate_genres`) and takes no style. `clean` (fast engine, default on): the
        guided-filter clean-up that removes the decoder's dark blotches and outlines (a cleaner, softer picture that
        the judges recognise as the genre less often: see the model card)."""
        a = self.check_inputs(content=content, genre=genre, engine=engine, strength=strength, size=size, steps=steps,
                              style_images=style_images, fit=fit, preserve_color=preserve_color,
                              clean=clean, style_given=style is not None)
        src, (w, h) = a["content"], a["size"]
        notes = image_notes(src)
        if needs_fitting(src, w, h):
            how = "centre-cropped" if a["fit"] == "crop" else "fitted whole (blurred backdrop)"
            notes.append(f"Your {src.width}x{src.height} picture was {how} to the 2:3 poster shape ({w}x{h}).")
        img = fit_image(src, (w, h), a["fit"])
        if a["strength"] == 0.0:
            if progress is not None:
                progress(1.0, img)
            return with_notes(img, notes)
        if style is None and a["engine"] not in ("translate", "bridge"):
            style = self.style_from_images(a["style_images"], grams=a["engine"] == "quality") if a["style_images"] \
                else self._genre_style(a["genre"])
        x = to_tensor(img)[None]
        if a["engine"] == "translate":
            out = self._translate(img, a["genre"], a["strength"], notes)
            if progress is not None:
                progress(1.0, None)
        elif a["engine"] == "bridge":
            out = self.bridge(x, a["genre"])
            out = out if a["strength"] == 1.0 else (1 - a["strength"]) * x + a["strength"] * out
            if progress is not None:
                progress(1.0, None)
        elif a["engine"] == "fast":
            out = self._fast(x, style, a["strength"], a["preserve_color"], color_match, a["clean"])
            if progress is not None:
                progress(1.0, None)
        else:
            if not style.gram:
                raise CheckpointError("The exemplar statistics have no Gram matrices: rerun train/build_exemplars.py.")
            if not self._quality_slots.acquire(blocking=False):
                raise BusyError("The quality engine is busy with another picture (one at a time on this server): "
                                "try again in a few minutes, or use the fast engine.")
            try:
                out = self.quality.run(x, style.gram, steps=a["steps"], strength=a["strength"], progress=progress,
                                       cancel=cancel)
            finally:
                self._quality_slots.release()
            if cancel is not None and cancel.is_set():
                notes.append("Cancelled: this is the picture so far.")
        if a["preserve_color"]:
            out = preserve_colors(out, x)
        return with_notes(to_pil(out), notes)

    def _genre_style(self, genre: str) -> GenreStyle:
        if self.bank is None:
            raise CheckpointError("No exemplar statistics loaded: run train/build_exemplars.py.")
        return self.bank.style(genre)

    def _fast(self, x: torch.Tensor, style: GenreStyle, strength: float, preserve_color: bool,
              color_match: Optional[bool], clean: bool = True) -> torch.Tensor:
        out = self.fast.run(x, style.mean[ENCODER_LAYER], style.std[ENCODER_LAYER], strength)
        cm = (self.FAST_COLOR_MATCH if color_match is None else color_match) and not preserve_color \
            and style.pixel_mean is not None
        if cm:
            out = (1 - strength) * out + strength * match_colors(out, style.pixel_mean, style.pixel_cov)
        if self.FAST_DETAIL > 0:  # the small CPU-trained decoder loses detail: mix the content back in
            ref = match_colors(x, style.pixel_mean, style.pixel_cov) if cm else x
            out = (1 - self.FAST_DETAIL) * out + self.FAST_DETAIL * ref
        r = round(self.FAST_SMOOTH * min(x.shape[-2:])) if clean else 0
        if r > 0:  # the decoder's dark blotches and outlines: re-fit the result to the content's structure
            out = guided_filter(x, out, r, self.FAST_SMOOTH_EPS).clamp(0, 1)
        return out

    @torch.inference_mode()
    def _translate(self, img: Image.Image, genre: str, strength: float, notes: list[str]) -> torch.Tensor:
        """`img` (already at the output size) translated to `genre` at the network's native area and blended with
        `img` by `strength`: (1, 3, H, W) in [0, 1]. TRANSLATE_ENLARGE "residual" (default): a grading translator's
        coefficients are applied to the full-size picture's pixels; another translator's change (its output minus
        its input) is enlarged (bicubic) and added to the full-size picture; both keep every detail the picture
        has; "upscale": the translation itself is enlarged by the learned upscaler (Lanczos
        when there is none)."""
        tr, (w, h) = self.translator, img.size
        nw, nh = native_size_for(tr.size, (w, h))
        dev = next(tr.parameters()).device
        full = to_tensor(img)[None]
        enlarged = (nw, nh) != (w, h)
        x = to_tensor(img.resize((nw, nh), Image.Resampling.LANCZOS))[None] if enlarged else full
        target = torch.tensor([tr.genres.index(genre)], device=dev)
        run = lambda **kw: ((tr(x.to(dev) * 2 - 1, target, **kw) + 1) / 2).cpu()  # noqa: E731
        if not enlarged:
            out = run().clamp(0, 1)
        elif self.TRANSLATE_ENLARGE == "residual" and getattr(tr, "grade", False):
            # a grading translator: its coefficients, found at the native size, are applied to the full-size pixels
            out = run(full=full.to(dev) * 2 - 1).clamp(0, 1)
            if w > nw or h > nh:
                notes.append(f"The translate engine works at {nw}x{nh}: its colour grade was spread over your "
                             f"picture and applied to it at {w}x{h}.")
        elif self.TRANSLATE_ENLARGE == "residual":
            delta = torch.nn.functional.interpolate(run() - x, size=(h, w), mode="bicubic", align_corners=False)
            out = (full + delta).clamp(0, 1)
            if w > nw or h > nh:
                notes.append(f"The translate engine works at {nw}x{nh}: its change to your picture was enlarged to "
                             f"{w}x{h} and added to the picture itself.")
        else:
            z, method = to_pil(run().clamp(0, 1)), "Lanczos"
            if self.upscaler is not None and (w > nw or h > nh):
                try:
                    z, method = self.upscaler.upscale(z, (w, h)), "the learned upscaler"
                except Exception as exc:  # optional: never fail a transfer over it
                    log.warning("upscaler failed (%s): Lanczos instead", exc)
            if z.size != (w, h):
                z = z.resize((w, h), Image.Resampling.LANCZOS)
            if w > nw or h > nh:
                notes.append(f"The translate engine works at {nw}x{nh}: the result was enlarged to {w}x{h} "
                             f"by {method}.")
            out = to_tensor(z)[None]
        return out if strength == 1.0 else (1 - strength) * full + strength * out


def native_size_for(native: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(W, H) with the area of the translator's native size, the aspect of `size`, multiples of 4 (at least 16)."""
    w, h = size
    k = math.sqrt(native[0] * native[1] / (w * h))
    return max(16, 4 * round(w * k / 4)), max(16, 4 * round(h * k / 4))


def _optional_upscaler(hub_repo: Optional[str]):
    """The learned upscaler (poster_studio.upscale, checkpoints/upscaler) when both are there, else None (Lanczos)."""
    try:
        from ..upscale import Upscaler

        return Upscaler.load(hub_repo=hub_repo)
    except Exception as exc:
        log.info("translate engine without a learned upscaler (%s): Lanczos", str(exc).splitlines()[0][:200])
        return None
