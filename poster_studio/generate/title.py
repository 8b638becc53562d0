"""Typesetting a poster: its title, tagline, star names, credit block and release line, in layouts drawn from what
posters of each genre do (`TEMPLATES`: three per genre, chosen by seed).

The title goes into the poster's title band: the top or the bottom of the picture, whichever is calmer (less
edge energy; a template may lean to one end), over a soft scrim so it reads on any background. Words are never
broken: lines break at spaces only, the type shrinks until the longest word fits the band, then the title is
wrapped into balanced lines; a word too long for the band at the smallest size is refused with a one-line
message. The other elements stack from the two ends of the poster (`plan`), the middle of the picture stays clear.
`plan` is pure geometry (a `Layout`: every line with its font, size and ink box); `render` draws a layout.
Fonts are bundled (fonts/, SIL OFL 1.1, with their licences); nothing is downloaded. A character a template's font
has no glyph for (Lato has no Ł) is set in a bundled font that has it.
"""
from __future__ import annotations

import functools
import itertools
import random
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..errors import InvalidArgumentError

FONTS = Path(__file__).resolve().parent / "fonts"
MAX_TITLE, MAX_TAGLINE, MAX_CREDITS = 60, 100, 200
FALLBACK_FONTS = ("SourceSansPro-Semibold.ttf", "EBGaramond12-Regular.otf")  # wide Latin coverage
CREDIT_FONT = "BebasNeue-Regular.otf"  # the billing block: condensed capitals
MAX_STACK = 0.38  # either end's typography takes at most this share of the poster's height
CLEAR = (0.46, 0.54)  # the middle of the picture (fractions of the height): no type nor scrim ever there
SMALL_WORDS = frozenset("a an and at by for from in into of on or the to with".split())  # weak line ends

RGB = tuple[int, int, int]


# ------------------------------------------------------------------------------------------ text checks
def check_text(name: str, value: Optional[str], limit: int, *, required_letters: bool = False) -> str:
    """The text with surrounding spaces stripped; InvalidArgumentError for control characters, more than `limit`
    characters, or (`required_letters`) no letter or digit at all (emoji cannot be typeset with these fonts)."""
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise InvalidArgumentError(f"{name} is {len(text)} characters long; the limit is {limit}.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidArgumentError(f"{name} contains control characters (line breaks, tabs ...): use plain text.")
    if text and required_letters and not any(ch.isalnum() for ch in text):
        raise InvalidArgumentError(f"{name} needs letters or digits: emoji and symbols alone cannot be typeset "
                                   "with the poster fonts.")
    drawable = typesettable(text)
    missing = sorted({ch for ch in drawable if ch != " " and not any(ord(ch) in _charset(f) for f in ALL_FONTS)})
    if missing:
        raise InvalidArgumentError(f"{name} has characters the poster fonts cannot draw ({''.join(missing[:8])}): "
                                   "use Latin, Greek or Cyrillic letters.")
    return text


def typesettable(text: str) -> str:
    """Drop emoji and other pictographs the bundled fonts have no glyphs for (letters, digits and punctuation stay)."""
    return " ".join("".join(ch for ch in text if unicodedata.category(ch) not in ("So", "Cs")).split())




# ------------------------------------------------------------------------------------------ fonts
@functools.lru_cache(maxsize=256)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / name), max(6, int(size)))


@functools.lru_cache(maxsize=None)
def _charset(name: str) -> frozenset[int]:
    """The code points font `name` has glyphs for (its cmap)."""
    from fontTools.ttLib import TTFont

    with TTFont(str(FONTS / name), lazy=True) as f:
        return frozenset(f.getBestCmap())


@functools.lru_cache(maxsize=None)
def _cap_ratio(name: str) -> float:
    """Cap height / font size: type sizes are given as cap heights, so that fonts of one size look alike."""
    return -_font(name, 100).getbbox("H", anchor="ls")[1] / 100.0


def font_for(name: str, text: str) -> str:
    """`name` when it has a glyph for every character of `text`, else the first bundled fallback that has."""
    need = {ord(ch) for ch in text if not ch.isspace()}
    for candidate in (name, *FALLBACK_FONTS):
        if need <= _charset(candidate):
            return candidate
    return FALLBACK_FONTS[-1]


# ------------------------------------------------------------------------------------------ templates
@dataclass(frozen=True)
class Template:
    """One poster layout: where the title goes and how it looks, and which other elements a poster carries.

    Sizes are cap heights as fractions of the poster height; tracking is extra letter spacing in em."""
    name: str
    font: str                      # title font (fonts/)
    fill: RGB                      # title colour
    scrim: RGB                     # colour of the scrim behind the title end
    upper: bool = True             # title in capitals
    size: float = 0.10             # largest title cap height
    max_lines: int = 2
    tracking: float = 0.0
    band: str = "calm"             # "calm" (the calmer end), or an end it leans to: "top" | "bottom"
    kicker: bool = False           # a leading "The" / "A" set small on a line of its own
    stroke: Optional[RGB] = None   # outline colour (stroke of 4% of the type size)
    glow: Optional[RGB] = None     # soft glow behind the title
    shadow: RGB = (0, 0, 0)        # drop shadow colour
    scrim_alpha: float = 0.75
    tagline: str = "far"           # "near" (beside the title, toward the middle) | "far" (the other end) | "none"
    tagline_font: str = "Lato-Regular.ttf"
    tagline_upper: bool = False
    tagline_fill: RGB = (245, 245, 245)
    names: bool = False            # star names in capitals at the top
    credits: str = "block"         # "block" (the billing block at the foot) | "line" (one line) | "none"
    release: bool = False          # a release line under the credits
    accent: RGB = (235, 235, 235)  # names and release line
    ink: RGB = (200, 200, 200)     # credits colour


W_ = (255, 255, 255)
TEMPLATES: dict[str, tuple[Template, Template, Template]] = {
    "Action_Adventure": (
        Template("steel", "Lato-Black.ttf", (255, 214, 90), (0, 0, 0), size=0.085, tagline="far", names=True,
                 release=True, accent=(255, 214, 90)),
        Template("blockbuster", "BebasNeue-Bold.otf", (236, 240, 245), (5, 10, 20), size=0.15, tracking=0.02,
                 band="bottom", glow=(255, 140, 40), tagline="far", tagline_font="BebasNeue-Regular.otf",
                 tagline_upper=True, release=True, accent=(255, 170, 60)),
        Template("mission", "LeagueSpartan-Bold.otf", (250, 250, 250), (10, 15, 25), size=0.075, kicker=True,
                 stroke=(200, 40, 20), tagline="near", tagline_upper=True, tagline_font="BebasNeue-Regular.otf",
                 names=True, credits="block"),
    ),
    "Animation": (
        Template("storybook", "FredokaOne-Regular.ttf", W_, (20, 40, 120), upper=False, size=0.09,
                 stroke=(20, 60, 170), tagline="far", credits="line", release=True, accent=(255, 230, 90)),
        Template("sunny", "LobsterTwo-BoldItalic.otf", (255, 222, 60), (60, 20, 110), upper=False, size=0.10,
                 band="top", stroke=(110, 30, 140), tagline="near", tagline_font="FredokaOne-Regular.ttf",
                 credits="block"),
        Template("bouncy", "LeagueSpartan-Bold.otf", W_, (0, 70, 130), size=0.075, kicker=True,
                 stroke=(235, 90, 40), tagline="far", tagline_font="FredokaOne-Regular.ttf", credits="line",
                 release=True, accent=(255, 255, 255)),
    ),
    "Comedy": (
        Template("marquee", "FredokaOne-Regular.ttf", (255, 236, 60), (120, 20, 60), upper=False, size=0.085,
                 tagline="far", names=True, credits="block"),
        Template("big-laugh", "LeagueSpartan-Bold.otf", (220, 30, 40), (255, 255, 255), size=0.075,
                 stroke=(255, 255, 255), shadow=(255, 255, 255), scrim_alpha=0.8, tagline="near",
                 tagline_fill=(25, 25, 25), names=True, credits="block", accent=(20, 20, 20), ink=(50, 50, 50)),
        Template("caps", "BebasNeue-Bold.otf", W_, (0, 0, 0), size=0.13, tracking=0.03, band="bottom",
                 tagline="far", tagline_fill=(255, 225, 60), names=True, release=True, accent=(255, 225, 60)),
    ),
    "Documentary": (
        Template("plain", "SourceSansPro-Semibold.ttf", W_, (0, 0, 0), size=0.07, tracking=0.08, tagline="near",
                 credits="line"),
        Template("essay", "EBGaramond12-Regular.otf", W_, (0, 0, 0), upper=False, size=0.085,
                 tagline="far", tagline_font="EBGaramond12-Regular.otf", credits="line"),
        Template("report", "BebasNeue-Bold.otf", (250, 210, 0), (0, 0, 0), size=0.11, tracking=0.04,
                 band="bottom", tagline="near", tagline_upper=True, tagline_font="BebasNeue-Regular.otf",
                 credits="block", release=True, accent=(250, 210, 0)),
    ),
    "Drama": (
        Template("classic", "SourceSansPro-Semibold.ttf", (240, 232, 220), (10, 10, 20), size=0.075,
                 tagline="far", credits="block"),
        Template("prestige", "EBGaramond12-Regular.otf", (240, 232, 220), (10, 10, 20), size=0.06, tracking=0.14,
                 max_lines=3, tagline="far", tagline_font="EBGaramond12-Regular.otf", names=True,
                 credits="block", release=True, accent=(240, 232, 220)),
        Template("quiet", "EBGaramond12-Regular.otf", W_, (0, 0, 0), upper=False, size=0.09, band="bottom",
                 tagline="near", tagline_font="EBGaramond12-Regular.otf", credits="block"),
    ),
    "Horror_Thriller": (
        Template("scream", "Lato-Black.ttf", (220, 24, 24), (0, 0, 0), size=0.085, tagline="far",
                 credits="block"),
        Template("dread", "EBGaramond12-Regular.otf", (235, 228, 215), (0, 0, 0), size=0.05, tracking=0.2,
                 max_lines=3, scrim_alpha=0.85, tagline="near", tagline_font="EBGaramond12-Regular.otf",
                 credits="line", release=True, accent=(200, 30, 30)),
        Template("blood", "BebasNeue-Bold.otf", (200, 16, 16), (0, 0, 0), size=0.15, tracking=0.02,
                 band="bottom", glow=(90, 0, 0), tagline="far", tagline_upper=True,
                 tagline_font="BebasNeue-Regular.otf", names=True, credits="block", release=True,
                 accent=(220, 220, 220)),
    ),
    "Romance": (
        Template("handwritten", "AmaticSC-Bold.ttf", (255, 225, 235), (70, 0, 30), upper=False, size=0.10,
                 tagline="far", credits="block"),
        Template("script", "LobsterTwo-BoldItalic.otf", (255, 246, 240), (90, 10, 40), upper=False, size=0.10,
                 glow=(255, 90, 140), tagline="far", tagline_font="EBGaramond12-Regular.otf", names=True,
                 credits="block"),
        Template("romantic-serif", "EBGaramond12-Regular.otf", (255, 228, 236), (60, 0, 25), size=0.065,
                 tracking=0.1, max_lines=3, tagline="near", tagline_font="EBGaramond12-Regular.otf", names=True,
                 credits="block", release=True, accent=(255, 200, 215)),
    ),
}
DEFAULT_TEMPLATES = TEMPLATES["Drama"]  # no genre given
STYLES = {genre: templates[0] for genre, templates in TEMPLATES.items()}  # each genre's first (classic) layout
ALL_FONTS = tuple(sorted({t.font for ts in TEMPLATES.values() for t in ts} |
                         {t.tagline_font for ts in TEMPLATES.values() for t in ts} | {CREDIT_FONT, *FALLBACK_FONTS}))


def templates_for(genres: Sequence[str]) -> tuple[Template, ...]:
    """The first genre's layouts (no genre: DEFAULT_TEMPLATES)."""
    return TEMPLATES.get(genres[0], DEFAULT_TEMPLATES) if genres else DEFAULT_TEMPLATES


def choose_template(genres: Sequence[str], seed: int | str, index: Optional[int] = None) -> tuple[int, Template]:
    """(index, template) among the first genre's layouts: `index` when given, else drawn by seed."""
    options = templates_for(genres)
    if index is None:
        index = random.Random(f"template:{seed}").randrange(len(options))
    if not 0 <= int(index) < len(options):
        raise InvalidArgumentError(f"Layout must be 0-{len(options) - 1}, got {index!r}.")
    return int(index), options[int(index)]


# ------------------------------------------------------------------------------------------ content
@dataclass(frozen=True)
class PosterText:
    """What goes on a poster. `credits` is the user's credits line (one string, never shortened) or invented
    billing units (a tuple, in reading order) of which the layout drops the least important (`credit_rank`:
    higher = dropped first) when space is short."""
    title: str
    tagline: str = ""
    names: tuple[str, ...] = ()
    credits: str | tuple[str, ...] = ""
    credit_rank: tuple[int, ...] = ()
    release: str = ""
    tagline_invented: bool = False  # an invented tagline may be left out when space is short; a typed one never


# ------------------------------------------------------------------------------------------ geometry
@dataclass
class Line:
    """One line of type: `x` is the centre, `y` the baseline; `box` its ink box (x0, y0, x1, y1) as drawn."""
    role: str
    text: str
    font: str
    size: int
    tracking: float
    x: float
    y: float
    box: tuple[int, int, int, int]
    fill: RGB = (255, 255, 255)


@dataclass
class Block:
    """Lines that belong together (the title, the tagline ...), stacked by baselines."""
    role: str
    lines: list[Line]
    height: float = 0.0

    def moved(self, top: float) -> "Block":
        out = []
        for ln in self.lines:
            x0, y0, x1, y1 = ln.box
            out.append(replace(ln, y=ln.y + top, box=(x0, int(y0 + top), x1, int(np.ceil(y1 + top)))))
        return Block(self.role, out, self.height)


@dataclass
class Layout:
    """Where everything goes on a W x H poster: the blocks with their lines, the band and the scrims."""
    size: tuple[int, int]
    band: str
    template: Template
    template_index: int = 0
    blocks: list[Block] = field(default_factory=list)
    # scrims: (y0, y1, colour, alpha, at_top, fade): solid `alpha` from the poster's edge, fading out over the
    # `fade` rows nearest the middle; never across the middle (CLEAR) of the picture
    scrims: list[tuple[int, int, RGB, float, bool, int]] = field(default_factory=list)
    band_width: int = 0
    dropped: list[str] = field(default_factory=list)  # optional elements left out for lack of room

    @property
    def lines(self) -> list[Line]:
        return [ln for b in self.blocks for ln in b.lines]

    def role_lines(self, role: str) -> list[Line]:
        return [ln for b in self.blocks if b.role == role for ln in b.lines]


def title_band(img: Image.Image, prefer: str = "calm") -> str:
    """'top' or 'bottom': the end of the poster with less edge energy (calmer, where a title reads best); a
    template leaning to one end takes it unless the other end is clearly calmer."""
    gray = np.asarray(img.convert("L").resize((48, 72)), dtype=np.float32)
    energy = np.abs(np.diff(gray, axis=0)).mean(1)[:-1] + np.abs(np.diff(gray, axis=1)).mean(1)[:-2]
    top, bottom = energy[: len(energy) * 3 // 10].mean(), energy[-len(energy) * 3 // 10:].mean()
    ratio = top / max(bottom, 1e-6)
    limit = {"top": 1.25, "bottom": 0.6}.get(prefer, 0.8)
    return "top" if ratio < limit else "bottom"


def _line_width(text: str, font: str, size: int, tracking: float) -> float:
    return _font(font, size).getlength(text) + tracking * size * max(0, len(text) - 1)


def _make_line(role: str, text: str, font: str, size: int, tracking: float, cx: float, baseline: float,
               fill: RGB, stroke: int = 0) -> Line:
    f = _font(font, size)
    w = _line_width(text, font, size, tracking)
    x0, y0, x1, y1 = f.getbbox(text, anchor="ls", stroke_width=stroke)
    left = cx - w / 2
    x1 += tracking * size * max(0, len(text) - 1)
    return Line(role, text, font, size, tracking, cx, baseline,
                (int(np.floor(left + x0)), int(np.floor(baseline + y0)), int(np.ceil(left + x1)),
                 int(np.ceil(baseline + y1))), fill)


def wrap_words(words: Sequence[str], width, max_w: float, max_lines: int, joiner: str = " ") -> Optional[list[str]]:
    """The words in at most `max_lines` lines no wider than `max_w` (`width(text)` measures one), breaking between
    words only: the fewest lines that fit, balanced (the widest line as narrow as it can be; a line ending in a weak
    word such as "of" or "the" counts 15% wider). None when no such breaking exists."""
    words = list(words)
    if not words:
        return []
    cache: dict[str, float] = {}

    def w(text: str) -> float:
        if text not in cache:
            cache[text] = width(text)
        return cache[text]

    n_words = len(words)
    for n in range(1, min(max_lines, n_words) + 1):
        best: Optional[tuple[float, list[str]]] = None
        for cuts in itertools.combinations(range(1, n_words), n - 1):
            edges = (0, *cuts, n_words)
            lines = [joiner.join(words[a:b]) for a, b in zip(edges, edges[1:])]
            widths = [w(line) for line in lines]
            if max(widths) > max_w:
                continue
            weak = sum(1 for b in cuts if words[b - 1].lower().strip(",:;") in SMALL_WORDS)
            cost = max(widths) * (1 + 0.15 * weak)
            if best is None or cost < best[0]:
                best = (cost, lines)
        if best is not None:
            return best[1]
    return None


def _stack(role: str, texts: Sequence[str], font_name: str, size: int, tracking: float, W: int, fill: RGB,
           leading: float, stroke: int = 0, top_pad_cap: bool = True) -> Block:
    """Lines centred on the poster, the block's top at y=0 (ink of accents included), baselines `leading` caps
    apart."""
    cap = _cap_ratio(font_name) * size
    lines, y = [], 0.0
    for i, text in enumerate(texts):
        f = font_for(font_name, text)
        ln = _make_line(role, text, f, size, tracking, W / 2, 0.0, fill, stroke)
        if i == 0:
            y = max(cap + stroke, -ln.box[1]) if top_pad_cap else -ln.box[1]
        else:
            y += cap * leading
        lines.append(_make_line(role, text, f, size, tracking, W / 2, y, fill, stroke))
    bottom = max(ln.box[3] for ln in lines) if lines else 0
    return Block(role, lines, float(bottom))


def _px(font: str, cap_px: float) -> int:
    return max(6, int(round(cap_px / _cap_ratio(font))))


class _TitleFit:
    """Sizes and breaks the title: the largest size (down to `min_cap`) at which the longest word fits the band
    and the whole title fits `max_lines` balanced lines."""

    def __init__(self, title: str, t: Template, W: int, H: int, band_w: float):
        self.t, self.W, self.H, self.band_w = t, W, H, band_w
        text = title.upper() if t.upper else title
        self.words = text.split()
        self.kicker: list[str] = []
        if t.kicker and len(self.words) > 1 and self.words[0].lower() in ("the", "a", "an"):
            self.kicker, self.words = self.words[:1], self.words[1:]
        self.font = font_for(t.font, text)
        self.min_cap = max(5.0, 0.03 * H)
        self.tracking = t.tracking  # plan() tightens a letter-spaced layout before refusing a long word

    def stroke(self, px: int) -> int:
        return max(1, round(px * 0.04)) if self.t.stroke else 0

    def width(self, px: int):
        tr, f, s = self.tracking, self.font, self.stroke(px)
        return lambda text: _line_width(text, f, px, tr) + 2 * s

    def longest_word_fits(self, cap: float) -> bool:
        px = _px(self.font, cap)
        return max(self.width(px)(w) for w in self.words) <= self.band_w

    def lines_at(self, cap: float, max_lines: int) -> Optional[list[str]]:
        px = _px(self.font, cap)
        return wrap_words(self.words, self.width(px), self.band_w, max_lines)

    def block(self, cap: float, max_lines: int) -> Optional[Block]:
        lines = self.lines_at(cap, max_lines)
        if lines is None:
            return None
        t, px = self.t, _px(self.font, cap)
        main = _stack("title", lines, self.font, px, self.tracking, self.W, t.fill, 1.28 if t.upper else 1.45,
                      self.stroke(px))
        if not self.kicker:
            return main
        kpx = max(6, int(px * 0.42))
        kick = _stack("title", self.kicker, self.font, kpx, max(self.tracking, 0.15), self.W, t.fill, 1.3,
                      self.stroke(kpx))
        gap = 0.35 * _cap_ratio(self.font) * px
        return Block("title", kick.lines + main.moved(kick.height + gap).lines, kick.height + gap + main.height)

    def sizes(self, start: float):
        cap = start
        while cap >= self.min_cap:
            yield cap
            cap *= 0.93
        yield self.min_cap

    def largest(self, start: float, max_lines: int) -> Optional[tuple[float, Block]]:
        for cap in self.sizes(start):
            if not self.longest_word_fits(cap):
                continue
            b = self.block(cap, max_lines)
            if b is not None:
                return cap, b
        return None


def _credit_lines(units: Sequence[str], W: int, px: int, band_w: float, max_lines: int) -> Optional[list[str]]:
    """Billing units broken between units (two spaces apart); a unit wider than a line breaks between its words."""
    width = lambda text: _line_width(text, font_for(CREDIT_FONT, text), px, 0.05)  # noqa: E731
    tokens = [u for u in units if u]
    if any(width(u) > band_w for u in tokens):
        tokens = " ".join(tokens).split()
        return wrap_words(tokens, width, band_w, max_lines)
    return wrap_words(tokens, width, band_w, max_lines, joiner="   ")


def plan(size: tuple[int, int], text: PosterText, template: Template, band: str = "top",
         template_index: int = 0) -> Layout:
    """The layout of `text` on a poster of `size` (W, H) with the title at `band` ("top" | "bottom").

    The title takes the largest size that fits (never below 3% of the height; a word that does not fit the band even
    then is refused: InvalidArgumentError). The other elements stack from the ends. Either end takes at most
    MAX_STACK of the height and both together two thirds; where an end is short of room the title first shrinks a
    little (to 80% of the layout's size), then that end's extras go (credit units, least important first; the
    release line; names), then the title shrinks further, then an invented tagline goes. What the user typed is never
    dropped: when it cannot fit, InvalidArgumentError."""
    W, H = size
    t = template
    band_w = W * 0.9
    margin_top, margin_bottom, gap = 0.045 * H, 0.025 * H, 0.022 * H
    lay = Layout((W, H), band, t, template_index, band_width=int(band_w))
    title = typesettable(text.title)
    fit = _TitleFit(title, t, W, H, band_w)
    if not fit.words:
        raise InvalidArgumentError("Title needs letters or digits: emoji and symbols alone cannot be typeset "
                                   "with the poster fonts.")
    if not fit.longest_word_fits(fit.min_cap) and fit.tracking:
        fit.tracking = 0.0
    if not fit.longest_word_fits(fit.min_cap):
        word = max(fit.words, key=lambda w: fit.width(_px(fit.font, fit.min_cap))(w))
        raise InvalidArgumentError(f"The title's word {word!r} is too long for the poster's title band even at the "
                                   "smallest type size: shorten it or break it with a space.")

    def small_block(role: str, content: str | Sequence[str], font: str, cap_frac: float, fill: RGB, upper: bool,
                    tracking: float, max_lines: int, leading: float = 1.55, joiner: str = " ") -> Optional[Block]:
        """A tagline, names or release line: a string broken between words, or tokens (names) kept whole."""
        tokens = typesettable(content).split() if isinstance(content, str) else \
            [typesettable(c) for c in content if typesettable(c)]
        if not tokens:
            return None
        tokens = [c.upper() for c in tokens] if upper else tokens
        f = font_for(font, " ".join(tokens))
        for cap in (cap_frac * H, cap_frac * H * 0.85, cap_frac * H * 0.72):
            px = _px(f, max(cap, 4.5))
            lines = wrap_words(tokens, lambda s: _line_width(s, f, px, tracking), band_w, max_lines, joiner)
            if lines is not None:
                return _stack(role, lines, f, px, tracking, W, fill, leading)
        return None

    user_credits = isinstance(text.credits, str)
    units = [text.credits] if user_credits and text.credits else list(text.credits or ())
    ranks = list(text.credit_rank) if not user_credits and len(text.credit_rank) == len(units) else [0] * len(units)
    if t.credits == "line" and not user_credits:
        units = [u for u, r in zip(units, ranks) if r == 0][:1]
        ranks = [0] * len(units)
    elif t.credits == "none" and not user_credits:
        units, ranks = [], []
    keep_names = bool(t.names and text.names)
    keep_release = bool(t.release and text.release)
    tagline_given = bool(text.tagline)

    def drop_credit() -> None:
        drop = max(range(len(units)), key=lambda i: (ranks[i], i))
        lay.dropped.append(f"credits:{units.pop(drop)}")
        ranks.pop(drop)

    def credits_block() -> Optional[Block]:
        cap = 0.017 * H
        while units:
            for c in (cap, cap * 0.85, max(4.0, cap * 0.72)):
                px = _px(CREDIT_FONT, c)
                lines = _credit_lines([u.upper() for u in units], W, px, W * 0.86, 5 if user_credits else 4)
                if lines is not None:
                    return _stack("credits", lines, CREDIT_FONT, px, 0.05, W, t.ink, 1.5)
            if user_credits:
                raise InvalidArgumentError("The credits do not fit the foot of this poster even in small type: "
                                           "shorten them (or make the poster 400x600).")
            drop_credit()  # invented billing: the least important unit goes
        return None

    title_cap = t.size * H
    max_lines = t.max_lines
    while True:
        found = fit.largest(title_cap, max_lines)
        if found is None:
            if max_lines < t.max_lines + 2:
                max_lines += 1
                continue
            raise InvalidArgumentError("The title is too long for the poster's title band even at the smallest "
                                       "type size: shorten it.")
        cap, title_block = found
        tagline = (small_block("tagline", text.tagline, t.tagline_font, 0.024, t.tagline_fill, t.tagline_upper,
                               0.06 if t.tagline_upper else 0.0, 2) if t.tagline != "none" or tagline_given
                   else None)
        names = small_block("names", text.names, CREDIT_FONT, 0.021, t.accent, True, 0.12, 1, joiner="     ") \
            if keep_names else None
        if names is None and keep_names:
            names = small_block("names", text.names[:2], CREDIT_FONT, 0.021, t.accent, True, 0.12, 1,
                                joiner="     ")
        credits = credits_block()
        release = small_block("release", text.release, "BebasNeue-Bold.otf", 0.022, t.accent, True, 0.12, 1) \
            if keep_release else None
        near = t.tagline == "near" or (t.tagline == "none" and tagline is not None)
        top: list[Block] = []
        bottom: list[Block] = []  # from the poster's foot upward
        if names is not None:
            top.append(names)
        if band == "top":
            top.append(title_block)
            if tagline is not None and near:
                top.append(tagline)
        elif tagline is not None and not near:
            top.append(tagline)
        for b in (release, credits):
            if b is not None:
                bottom.append(b)
        if band == "top":
            if tagline is not None and not near:
                bottom.append(tagline)
        else:
            bottom.append(title_block)
            if tagline is not None and near:
                bottom.append(tagline)
        top_h = margin_top + sum(b.height for b in top) + gap * max(0, len(top) - 1)
        bottom_h = margin_bottom + sum(b.height for b in bottom) + gap * max(0, len(bottom) - 1)
        if top_h + bottom_h <= H * (2 / 3) - gap and max(top_h, bottom_h) <= MAX_STACK * H:
            break
        # make room where it is short (one end too tall, or both together): a title a little smaller first, then
        # the extras of that end, then a smaller title still, then an invented tagline
        total_over = top_h + bottom_h > H * (2 / 3) - gap
        over = {"top": total_over or top_h > MAX_STACK * H, "bottom": total_over or bottom_h > MAX_STACK * H}
        tagline_end = ("top" if band == "top" else "bottom") if near else ("bottom" if band == "top" else "top")
        if over[band] and cap > max(fit.min_cap, 0.8 * t.size * H) * 1.01:
            title_cap = cap * 0.93
        elif over["bottom"] and not user_credits and len(units) > 1:
            drop_credit()
        elif over["bottom"] and keep_release:
            keep_release = False
            lay.dropped.append("release")
        elif over["top"] and keep_names:
            keep_names = False
            lay.dropped.append("names")
        elif over[band] and cap > fit.min_cap * 1.01:
            title_cap = cap * 0.9
        elif over["bottom"] and not user_credits and units:
            units, ranks = [], []
            lay.dropped.append("credits")
        elif over[tagline_end] and tagline is not None and text.tagline_invented:
            text = replace(text, tagline="")
            tagline_given = False
            lay.dropped.append("tagline")
            t = replace(t, tagline="none")
        else:
            raise InvalidArgumentError("The title, tagline and credits do not all fit this poster: shorten them "
                                       "(or make the poster 400x600).")
    # place the stacks
    y = margin_top
    for b in top:
        lay.blocks.append(b.moved(y))
        y += b.height + gap
    top_end = y - gap if top else 0.0
    y = H - margin_bottom
    for b in bottom:
        y -= b.height
        lay.blocks.append(b.moved(y))
        y -= gap
    bottom_start = y + gap if bottom else float(H)
    fade = 0.1 * H
    title_at_top = band == "top"
    light = t.scrim == (255, 255, 255)  # a light template: both ends light, so its dark small type reads
    other = t.scrim if light else (0, 0, 0)
    other_alpha = 0.72  # the end without the title: taglines, names, the billing block
    if top:
        y1 = int(min(CLEAR[0] * H, top_end + fade))
        lay.scrims.append((0, y1, t.scrim if title_at_top else other, t.scrim_alpha if title_at_top else other_alpha,
                           True, max(1, y1 - int(top_end))))
    if bottom:
        y0 = int(max(CLEAR[1] * H, bottom_start - fade))
        lay.scrims.append((y0, H, other if title_at_top else t.scrim, other_alpha if title_at_top else t.scrim_alpha,
                           False, max(1, int(bottom_start) - y0)))
    return lay


# ------------------------------------------------------------------------------------------ drawing
def _scrim(img: Image.Image, color: RGB, y0: int, y1: int, at_top: bool, strength: float = 0.75,
           fade: int = 1) -> Image.Image:
    """Darken (or tint) rows y0..y1: `strength` from the poster's edge to the type, fading out (smoothstep) over the
    `fade` rows toward the middle of the poster."""
    h = max(1, y1 - y0)
    t = np.clip((np.arange(h, dtype=np.float32) + 0.5) / max(1, fade), 0.0, 1.0)  # 0 at the inner edge
    if at_top:
        t = t[::-1]
    ramp = strength * t * t * (3 - 2 * t)
    alpha = np.zeros((img.height, img.width), np.float32)
    alpha[y0:y1] = ramp[:, None]
    a = Image.fromarray((alpha * 255).astype(np.uint8), "L")
    return Image.composite(Image.new("RGB", img.size, color), img, a)


def _draw_line(draw: ImageDraw.ImageDraw, ln: Line, fill, stroke: int = 0, stroke_fill=None, offset=(0, 0)) -> None:
    f = _font(ln.font, ln.size)
    w = _line_width(ln.text, ln.font, ln.size, ln.tracking)
    left = ln.x - w / 2 + offset[0]
    y = ln.y + offset[1]
    kw = dict(stroke_width=stroke, stroke_fill=stroke_fill) if stroke else {}
    if not ln.tracking:
        draw.text((left, y), ln.text, font=f, fill=fill, anchor="ls", **kw)
        return
    extra = ln.tracking * ln.size
    for i, ch in enumerate(ln.text):
        draw.text((left + f.getlength(ln.text[:i]) + i * extra, y), ch, font=f, fill=fill, anchor="ls", **kw)


def render(img: Image.Image, layout: Layout) -> Image.Image:
    """A copy of `img` (resized to the layout's size if needed) with the layout drawn: scrims, then each line."""
    out = img.convert("RGB").copy()
    if out.size != layout.size:
        out = out.resize(layout.size, Image.Resampling.LANCZOS)
    t = layout.template
    for y0, y1, colour, alpha, at_top, fade in layout.scrims:
        out = _scrim(out, colour, y0, y1, at_top, alpha, fade)
    title = layout.role_lines("title")
    if t.glow and title:
        glow = Image.new("L", out.size, 0)
        gd = ImageDraw.Draw(glow)
        for ln in title:
            _draw_line(gd, ln, 255, stroke=max(1, ln.size // 10), stroke_fill=255)
        glow = glow.filter(ImageFilter.GaussianBlur(max(1.5, title[0].size / 7)))
        out = Image.composite(Image.new("RGB", out.size, t.glow), out,
                              glow.point(lambda v: int(v * 0.85)))
    draw = ImageDraw.Draw(out)
    for ln in layout.lines:
        if ln.role == "title":
            stroke = max(1, round(ln.size * 0.04)) if t.stroke else 0
            off = max(1, ln.size // 22)
            _draw_line(draw, ln, t.shadow, stroke, t.shadow, offset=(off, off))
            _draw_line(draw, ln, ln.fill, stroke, t.stroke)
        else:
            shade = t.scrim if t.scrim == (255, 255, 255) else (0, 0, 0)
            _draw_line(draw, ln, shade, offset=(1, 1))
            _draw_line(draw, ln, ln.fill)
    return out


def _suited(t: Template, img: Image.Image, band: str) -> Template:
    """The layout, its light scrim turned dark where the title's end of the picture is dark (a white haze over a
    dark picture reads as fog, not as a poster)."""
    if t.scrim != (255, 255, 255):
        return t
    gray = np.asarray(img.convert("L").resize((32, 48)), dtype=np.float32)
    end = gray[:15] if band == "top" else gray[-15:]
    if end.mean() >= 120:
        return t
    return replace(t, scrim=(0, 0, 0), shadow=(0, 0, 0), stroke=None, tagline_fill=(245, 245, 245),
                   accent=(235, 235, 235), ink=(200, 200, 200))


def typeset_image(img: Image.Image, text: PosterText, genres: Sequence[str] = (), *, seed: int | str = 0,
                  template: Optional[int] = None) -> tuple[Image.Image, Layout]:
    """(the poster with `text` typeset, its layout): the first genre's layout `template` (drawn by `seed` when
    None), the title in the calmer end the layout allows."""
    index, t = choose_template(genres, seed, template)
    band = title_band(img, t.band)
    layout = plan(img.size, text, _suited(t, img, band), band, index)
    return render(img, layout), layout


def overlay_title(img: Image.Image, title: str, tagline: str = "", credits: str = "", genres: Sequence[str] = (),
                  *, template: Optional[int] = 0, seed: int | str = 0) -> Image.Image:
    """A copy of the poster with the title, tagline and credits line typeset in the first genre's layout
    `template` (0 = the genre's classic layout; None = drawn by seed)."""
    return typeset_image(img, PosterText(title, tagline, credits=credits), genres, seed=seed, template=template)[0]
