"""`PosterTypesetter`: the typography service: "none", the user's "title" (with the tagline and credits typed), or
"invented" (a new title from the title model, an invented tagline, star names, billing block and release line;
what the user typed is used instead of the invented part it replaces).

Layouts (title.py: three per genre) and invented text are chosen by seed: poster `i` of a call with seed `s` has the
key "s:i", so a seed reproduces its posters. The title model (checkpoints/titles) loads on first use, so a
typesetter that only sets typed titles needs no checkpoint. `make_poster` is the same for one picture (Genre
transfer and Dream results).
"""
from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any, Optional, Sequence

from PIL import Image

from .. import genres as G
from ..checks import check_choice, check_int
from ..errors import InvalidArgumentError
from . import blurbs
from .invent import TitleModel
from .title import MAX_CREDITS, MAX_TAGLINE, MAX_TITLE, PosterText, check_text, typeset_image

TYPOGRAPHY = ("none", "title", "invented")
ALIASES = {"auto": "invented", "invent": "invented", "yours": "title", "your title": "title", "off": "none",
           "": "none"}
_UNSET: Any = object()


class PosterTypesetter:
    """Typesets posters: check_inputs once, then typeset (many) or make_poster (one)."""

    TYPOGRAPHY = TYPOGRAPHY
    MAX_TITLE, MAX_TAGLINE, MAX_CREDITS = MAX_TITLE, MAX_TAGLINE, MAX_CREDITS
    MAX_SEED = 2**31 - 1
    LAYOUTS = 3  # per genre

    def __init__(self, titles: Optional[TitleModel] = None, *, directory: Optional[str | Path] = None,
                 hub_repo: Optional[str] = None):
        self._titles = titles
        self._where = dict(directory=directory, hub_repo=hub_repo)
        self._lock = threading.Lock()

    @property
    def titles(self) -> TitleModel:
        """The title model, loaded on first use (CheckpointError saying how to train it when missing)."""
        with self._lock:
            if self._titles is None:
                self._titles = TitleModel.load(**self._where)
            return self._titles

    # -- arguments
    def check_inputs(self, *, typography: Any = _UNSET, title: Any = _UNSET, tagline: Any = _UNSET,
                     credits: Any = _UNSET, genres: Any = _UNSET, seed: Any = _UNSET, layout: Any = _UNSET) -> dict:
        """Validated arguments (only those given); typography None = "title" when a title is typed, else "none"."""
        out: dict = {}
        if genres is not _UNSET:
            out["genres"] = G.parse_genres(genres)
        if seed is not _UNSET:
            out["seed"] = check_int("Seed", seed, 0, self.MAX_SEED)
        if layout is not _UNSET:
            out["layout"] = None if layout in (None, "", "auto") else check_int("Layout", layout, 0, self.LAYOUTS - 1)
        for key, value, limit in (("title", title, self.MAX_TITLE), ("tagline", tagline, self.MAX_TAGLINE),
                                  ("credits", credits, self.MAX_CREDITS)):
            if value is not _UNSET:
                out[key] = check_text(key.capitalize(), value, limit, required_letters=key == "title")
        if typography is not _UNSET:
            if typography is None:
                mode = "title" if out.get("title") else "none"
            else:
                raw = str(typography).strip().lower()
                mode = check_choice("Typography", ALIASES.get(raw, raw), self.TYPOGRAPHY)
            if mode == "title" and title is not _UNSET and not out.get("title"):
                raise InvalidArgumentError("Typography 'title' needs a title: type one, or choose 'invented' for an "
                                           "invented one (or 'none').")
            out["typography"] = mode
        return out

    # -- text
    def poster_text(self, genres: Sequence[str], key: str, typography: str, title: str = "", tagline: str = "",
                    credits: str = "") -> PosterText:
        """What poster `key` carries: the typed texts, or (invented) those with the rest invented."""
        if typography != "invented":
            return PosterText(title, tagline, credits=credits)
        rng = random.Random(f"poster:{'|'.join(genres)}:{key}")
        stars = blurbs.names(rng, 3)
        units, ranks = blurbs.billing(rng, stars)
        return PosterText(title or self.titles.invent(genres, key),
                          tagline or blurbs.tagline(genres, rng),
                          names=stars, credits=credits or units, credit_rank=() if credits else ranks,
                          release=blurbs.release(genres, rng), tagline_invented=not tagline)

    # -- the service
    def typeset(self, images: Sequence[Image.Image], genres: Sequence[str] = (), *, typography: Optional[str] = None,
                title: str = "", tagline: str = "", credits: str = "", seed: int = 0, layout: Optional[int] = None,
                genre_sets: Optional[Sequence[Sequence[str]]] = None) -> list[Image.Image]:
        """Copies of the posters with typography (typography "none": the posters as they are). Poster i uses the
        genre set `genre_sets[i]` when given (the sets an "any genre" request drew), else `genres`."""
        a = self.check_inputs(typography=typography, title=title, tagline=tagline, credits=credits, genres=genres,
                              seed=seed, layout=layout)
        if a["typography"] == "none":
            return list(images)
        out = []
        for i, img in enumerate(images):
            gs = G.parse_genres(genre_sets[i]) if genre_sets is not None else a["genres"]
            key = f"{a['seed']}:{i}"
            text = self.poster_text(gs, key, a["typography"], a["title"], a["tagline"], a["credits"])
            out.append(typeset_image(img, text, gs, seed=key, template=a["layout"])[0])
        return out

    def make_poster(self, image: Image.Image, genres: Sequence[str] = (), *, typography: Optional[str] = "invented",
                    title: str = "", tagline: str = "", credits: str = "", seed: int = 0,
                    layout: Optional[int] = None) -> Image.Image:
        """One picture (a Genre transfer or Dream result) made a poster: typography in the first genre's layout."""
        return self.typeset([image], genres, typography=typography, title=title, tagline=tagline, credits=credits,
                            seed=seed, layout=layout)[0]


_DEFAULT: Optional[PosterTypesetter] = None
_DEFAULT_LOCK = threading.Lock()


def default_typesetter() -> PosterTypesetter:
    """One typesetter per process over checkpoints/titles (or the configured Hub repo), shared by the tabs."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = PosterTypesetter()
        return _DEFAULT


def make_poster(image, genres: Sequence[str] = (), *, title: str = "", tagline: str = "", credits: str = "",
                seed: int = 0, layout: Optional[int] = None, typesetter: Optional[PosterTypesetter] = None
                ) -> Image.Image:
    """Any picture (a path, bytes, PIL image or array: a Genre transfer or Dream result) made a poster of the first
    genre: the typed title (with its tagline and credits) or, without a title, invented typography; by seed."""
    from ..images import load_image

    ts = typesetter or default_typesetter()
    a = ts.check_inputs(typography=None if str(title or "").strip() else "invented", title=title, tagline=tagline,
                        credits=credits, genres=genres, seed=seed, layout=layout)
    return ts.make_poster(load_image(image), a["genres"], typography=a["typography"], title=a["title"],
                          tagline=a["tagline"], credits=a["credits"], seed=a["seed"], layout=a["layout"])
