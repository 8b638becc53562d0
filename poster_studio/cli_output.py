"""What every capability's command line does with its results: check the output file name before any work, save a
picture (its notes to stderr, its path to stdout), print JSON (and write it to --json-out)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

from PIL import Image

from .errors import InvalidArgumentError
from .images import image_notes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def output_image_path(out: str) -> Path:
    """--out as a Path, or InvalidArgumentError when it is not an image file name (checked before any work)."""
    path = Path(out)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InvalidArgumentError(f"--out must end in .png, .jpg or .webp, got {out!r}.")
    return path


def save_image(img: Image.Image, out: Path) -> int:
    for note in image_notes(img):
        print(f"note: {note}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    print(str(out))
    return 0


def emit_json(result: Any, json_out: Optional[str] = None) -> int:
    text = json.dumps(result, indent=2)
    print(text)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(text)
    return 0
