"""Typesetting the user's title, tagline and credits line onto a poster, in a genre-fitting style.

The title goes into the poster's title band: the top or the bottom of the poster, whichever is calmer (less
edge energy), over a soft scrim so it reads on any background; the tagline takes the other end, the credits line
the very bottom, as posters do. Fonts are bundled (fonts/, SIL OFL 1.1); nothing is downloaded.
"""
from __future__ import annotations

import functools
import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InvalidArgumentError

FONTS = Path(__file__).resolve().parent / "fonts"
MAX_TITLE, MAX_TAGLINE, MAX_CREDITS = 60, 100, 200


@dataclass(frozen=True)
class TitleStyle:
    font: str               # file in fonts/
    fill: tuple[int, int, int]
    scrim: tuple[int, int, int]
    upper: bool = True


STYLES = {
    "Action_Adventure": TitleStyle("Lato-Black.ttf", (255, 214, 90), (0, 0, 0)),
    "Animation": TitleStyle("FredokaOne-Regular.ttf", (255, 255, 255), (20, 40, 120), upper=False),
    "Comedy": TitleStyle("FredokaOne-Regular.ttf", (255, 236, 60), (120, 20, 60), upper=False),
    "Documentary": TitleStyle("SourceSansPro-Semibold.ttf", (255, 255, 255), (0, 0, 0)),
    "Drama": TitleStyle("SourceSansPro-Semibold.ttf", (240, 232, 220), (10, 10, 20)),
    "Horror_Thriller": TitleStyle("Lato-Black.ttf", (220, 24, 24), (0, 0, 0)),
    "Romance": TitleStyle("AmaticSC-Bold.ttf", (255, 225, 235), (70, 0, 30), upper=False),
}
DEFAULT_STYLE = TitleStyle("Lato-Black.ttf", (255, 255, 255), (0, 0, 0))
SMALL_FONT = "Lato-Regular.ttf"


@functools.lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / name), max(6, size))


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
    return text


def _typesettable(text: str) -> str:
    """Drop emoji and other pictographs the bundled fonts have no glyphs for (letters, digits and punctuation stay)."""
    return " ".join("".join(ch for ch in text if unicodedata.category(ch) not in ("So", "Cs")).split())


def title_band(img: Image.Image) -> str:
    """'top' or 'bottom': the end of the poster with less edge energy (calmer, where a title reads best)."""
    gray = np.asarray(img.convert("L").resize((48, 72)), dtype=np.float32)
    energy = np.abs(np.diff(gray, axis=0)).mean(1)[:-1] + np.abs(np.diff(gray, axis=1)).mean(1)[:-2]
    top, bottom = energy[: len(energy) * 3 // 10].mean(), energy[-len(energy) * 3 // 10:].mean()
    return "top" if top < 0.8 * bottom else "bottom"


def _fit_lines(draw: ImageDraw.ImageDraw, text: str, font_name: str, max_w: int, max_size: int,
               max_lines: int = 2) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font size (down to 1/4 of max_size) at which `text` fits max_w in at most max_lines lines."""
    size = max_size
    while True:
        font = _font(font_name, size)
        for n in range(1, max_lines + 1):
            lines = textwrap.wrap(text, width=max(1, -(-len(text) // n))) or [text]
            if len(lines) <= max_lines and all(draw.textlength(l, font=font) <= max_w for l in lines):
                return font, lines
        if size <= max_size // 4:
            return font, textwrap.wrap(text, width=max(1, -(-len(text) // max_lines)))[:max_lines]
        size = int(size * 0.9)


def _scrim(img: Image.Image, color: tuple[int, int, int], y0: int, y1: int, fade_down: bool) -> Image.Image:
    """Darken (or tint) rows y0..y1 with a vertical alpha gradient, strongest at the poster's edge."""
    h = max(1, y1 - y0)
    ramp = np.linspace(0.0, 0.75, h) if fade_down else np.linspace(0.75, 0.0, h)
    alpha = np.zeros((img.height, img.width), np.float32)
    alpha[y0:y1] = ramp[:, None]
    a = Image.fromarray((alpha * 255).astype(np.uint8), "L")
    return Image.composite(Image.new("RGB", img.size, color), img, a)


def _draw_lines(draw, lines, font, fill, cx: int, y: int, shadow: tuple[int, int, int]) -> int:
    for line in lines:
        w = draw.textlength(line, font=font)
        x = int(cx - w / 2)
        off = max(1, font.size // 18)
        draw.text((x + off, y + off), line, font=font, fill=shadow)
        draw.text((x, y), line, font=font, fill=fill)
        y += int(font.size * 1.08)
    return y


def overlay_title(img: Image.Image, title: str, tagline: str = "", credits: str = "",
                  genres: Sequence[str] = ()) -> Image.Image:
    """A copy of the poster with the (checked) title, tagline and credits typeset in the first genre's style."""
    style = STYLES.get(genres[0], DEFAULT_STYLE) if genres else DEFAULT_STYLE
    out = img.convert("RGB").copy()
    W, H = out.size
    band = title_band(out)
    title = _typesettable(title)
    if style.upper:
        title = title.upper()
    draw = ImageDraw.Draw(out)
    font, lines = _fit_lines(draw, title, style.font, int(W * 0.9), int(H * 0.1))
    block = int(len(lines) * font.size * 1.08)
    credits_h = int(H * 0.07) if credits else 0
    if band == "bottom":
        y_title = H - credits_h - block - int(H * 0.04)
        out = _scrim(out, style.scrim, max(0, y_title - int(H * 0.12)), H, fade_down=True)
    else:
        y_title = int(H * 0.05)
        out = _scrim(out, style.scrim, 0, y_title + block + int(H * 0.1), fade_down=False)
        if credits:
            out = _scrim(out, (0, 0, 0), H - credits_h - int(H * 0.04), H, fade_down=True)
    draw = ImageDraw.Draw(out)
    _draw_lines(draw, lines, font, style.fill, W // 2, y_title, style.scrim)
    small = max(7, int(H * 0.028))
    if tagline:
        t_font, t_lines = _fit_lines(draw, _typesettable(tagline), SMALL_FONT, int(W * 0.85), small + 2, 2)
        y = int(H * 0.03) if band == "bottom" else y_title + block + int(H * 0.015)
        if band == "bottom":
            out = _scrim(out, (0, 0, 0), 0, y + int(len(t_lines) * t_font.size * 1.3), fade_down=False)
            draw = ImageDraw.Draw(out)
        _draw_lines(draw, t_lines, t_font, (245, 245, 245), W // 2, y, (0, 0, 0))
    if credits:
        c_font, c_lines = _fit_lines(draw, _typesettable(credits).upper(), SMALL_FONT, int(W * 0.9),
                                     max(6, small - 2), 3)
        y = H - int(len(c_lines) * c_font.size * 1.08) - int(H * 0.015)
        _draw_lines(draw, c_lines, c_font, (200, 200, 200), W // 2, y, (0, 0, 0))
    return out
