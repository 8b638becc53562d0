"""Images in and out: safe loading of user images, the one image<->tensor conversion path, and fitting a
picture to a size.

- `load_image`: any file, bytes, array or PIL image in, an RGB PIL image out, or InvalidImageError. Handles
  grayscale, palette, RGBA/LA (composited on white), CMYK, 16-bit and float modes, animated images (first frame,
  said in `image_notes`), EXIF rotation; refuses decompression bombs, tiny images and non-images.
- `to_tensor` / `to_pil`: RGB PIL <-> float (3, H, W) in [0, 1] (torchvision.transforms.v2); `to_pils` for batches.
- `fit_image(img, (W, H), mode)`: "crop" (centre crop to the aspect) or "fit" (whole picture on a blurred
  backdrop of itself); `needs_fitting` tells whether the aspect differs.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

MAX_PIXELS = 40_000_000  # ~ 6300x6300; bigger inputs are refused before decoding
MIN_SIDE = 16
MAX_FILE_BYTES = 25 * 1024 * 1024
FIT_MODES = ("crop", "fit")
NOTE_KEY = "poster_studio_notes"

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
    notes = []
    if getattr(img, "is_animated", False):
        notes.append(f"{name} is animated ({getattr(img, 'n_frames', '?')} frames): its first frame was used.")
        img.seek(0)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not stop a good picture
        pass
    out = _to_rgb(img)
    if notes:
        out = out.copy() if out is img else out
        out.info[NOTE_KEY] = notes
    return out


def image_notes(img: Image.Image) -> list[str]:
    """What was decided for the user on the way to this picture (load_image: an animated image's first frame was
    used; the services: the picture was cropped to 2:3, a run was cancelled ...)."""
    return list(img.info.get(NOTE_KEY, []))


def with_notes(img: Image.Image, notes: list[str]) -> Image.Image:
    """`img` carrying `notes` (read back with image_notes)."""
    img.info[NOTE_KEY] = list(notes)
    return img


# ------------------------------------------------------------------------------------------- tensors
def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> contiguous float tensor (3, H, W) in [0, 1]."""
    return TF.to_dtype(TF.to_image(img.convert("RGB")), torch.float32, scale=True).contiguous()


def to_pil(x: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in [0, 1] (clamped) -> RGB PIL image."""
    x = x.detach().float().cpu()
    if x.dim() == 4:
        x = x[0]
    return TF.to_pil_image(TF.to_dtype(x.clamp(0, 1), torch.uint8, scale=True), mode="RGB")


def to_pils(x: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> list[Image.Image]:
    """Batch (N, 3, H, W) with values in `value_range` (e.g. (-1, 1) for a tanh generator) -> RGB PIL images."""
    lo, hi = value_range
    return [to_pil((im - lo) / (hi - lo)) for im in x]


# ------------------------------------------------------------------------------------------- fitting
def needs_fitting(img: Image.Image, width: int, height: int, tolerance: float = 0.03) -> bool:
    """True when the picture's aspect differs from width/height by more than `tolerance`."""
    return abs(img.width / img.height - width / height) > tolerance


def fit_image(img: Image.Image, size: tuple[int, int], mode: str = "crop") -> Image.Image:
    """The picture at size (W, H): "crop" centre-crops it to the aspect; "fit" shows all of it, centred on a
    blurred, enlarged copy of itself (no black bars)."""
    w, h = size
    if not needs_fitting(img, w, h) or mode == "crop":
        return ImageOps.fit(img, (w, h), method=Image.Resampling.BICUBIC)
    backdrop = ImageOps.fit(img, (w, h), method=Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(12))
    inner = ImageOps.contain(img, (w, h), method=Image.Resampling.BICUBIC)
    backdrop.paste(inner, ((w - inner.width) // 2, (h - inner.height) // 2))
    return backdrop
