"""Opening user images safely: any file, bytes or PIL image in, an RGB PIL image out, or InvalidImageError.

Handles grayscale, palette, RGBA/LA (composited on white), CMYK, 16-bit and float modes, animated
images (first frame), EXIF rotation, and refuses decompression bombs, tiny images and non-images.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # ~ 6300x6300; bigger inputs are refused before decoding
MIN_SIDE = 16
MAX_FILE_BYTES = 25 * 1024 * 1024

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

from .errors import InvalidImageError  # noqa: E402


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        a = ((a - lo) * scale).clip(0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if mode == "CMYK":
        return img.convert("RGB")
    return img.convert("RGB")


def load_image(source: ImageInput, *, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open `source` (path, bytes, PIL image or HxWxC uint8 array) as an RGB PIL image, or raise InvalidImageError."""
    if source is None:
        raise InvalidImageError("No image was given: upload a picture first.")
    name = "the image"
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim not in (2, 3) or arr.size == 0:
            raise InvalidImageError("The array is not an image (expected HxW or HxWxC).")
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    elif isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, (bytes, bytearray)):
            data = bytes(source)
        else:
            path = Path(source)
            name = path.name
            if not path.is_file():
                raise InvalidImageError(f"{name}: file not found.")
            size = path.stat().st_size
            if size == 0:
                raise InvalidImageError(f"{name}: the file is empty.")
            if size > MAX_FILE_BYTES:
                raise InvalidImageError(
                    f"{name}: the file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB."
                )
            data = path.read_bytes()
        if len(data) == 0:
            raise InvalidImageError("The upload is empty.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
                w, h = img.size
                if w * h > max_pixels:
                    raise InvalidImageError(
                        f"{name} is {w}x{h} pixels; the limit is {max_pixels / 1e6:.0f} megapixels. Resize it first."
                    )
                img.load()
        except InvalidImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidImageError(f"{name} is too large to open safely (decompression bomb guard).") from None
        except UnidentifiedImageError:
            raise InvalidImageError(f"{name} is not an image PIL can read (is it a JPEG/PNG/WebP/GIF?).") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidImageError(f"{name} is corrupt or truncated ({exc}).") from None
    w, h = img.size
    if w * h > max_pixels:
        raise InvalidImageError(f"{name} is {w}x{h} pixels; the limit is {max_pixels / 1e6:.0f} megapixels.")
    if min(w, h) < min_side:
        raise InvalidImageError(f"{name} is only {w}x{h} pixels; it needs at least {min_side} on each side.")
    if getattr(img, "is_animated", False):
        img.seek(0)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop a good picture
        pass
    return _to_rgb(img)
