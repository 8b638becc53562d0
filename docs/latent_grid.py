"""Render docs/generate-latent.jpg: 7 genres (rows) x 6 seeds (columns) of an engine's posters at 400x600, as the
app makes them (no typography), each tile shown at half size.

  python docs/latent_grid.py [--engine latent] [--guidance 0] [--seeds 0 1 2 3 4 5] [--out docs/generate-latent.jpg]

Tile (genre, seed s) is generate([genre], n=1, seed=s, size="400x600", engine=ENGINE, truncation=1, guidance=K)[0]: the
command line `python -m poster_studio generate --genres GENRE --n 1 --seed S --size 400x600 --engine ENGINE
--truncation 1 --guidance K` makes it at full size.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio.generate import PosterGenerator  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", default="latent")
    p.add_argument("--seeds", type=int, nargs="*", default=list(range(6)))
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--guidance", type=int, default=0, help="classifier-guidance steps (latent engine)")
    p.add_argument("--tile", type=int, default=200, help="tile width (height x1.5)")
    p.add_argument("--out", default=str(ROOT / "docs" / "generate-latent.jpg"))
    args = p.parse_args(argv)
    gen = PosterGenerator.load()
    tw, th, side = args.tile, args.tile * 3 // 2, 130
    sheet = Image.new("RGB", (side + tw * len(args.seeds), th * len(G.GENRES)), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    for r, genre in enumerate(G.GENRES):
        draw.text((8, r * th + th // 2), G.DISPLAY_NAMES[genre], fill=(235, 235, 235), anchor="lm")
        for c, seed in enumerate(args.seeds):
            poster = gen.generate([genre], n=1, seed=seed, size="400x600", engine=args.engine,
                                  truncation=args.truncation, guidance=args.guidance)[0]
            sheet.paste(poster.resize((tw, th), Image.Resampling.LANCZOS), (side + c * tw, r * th))
    sheet.save(args.out, quality=88)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
