"""Render docs/typography.png: the 7 genres (columns) x their 3 layouts (rows), each an invented title, tagline
and credits over a poster of the current generator (checkpoints/generator, 400x600), as the app makes them.

  python docs/typography_grid.py [--seed 5] [--out docs/typography.png] [--tile 240]

Poster r of a genre column is generate([genre], n=3, seed)[r] typeset with layout r and the typography seed
`seed + r`; run `python -m poster_studio generate --genres GENRE --n 3 --seed SEED --size 400x600 --title auto
--layout R` to get one at full size.
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
from poster_studio.generate.title import TEMPLATES, _font  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--tile", type=int, default=240, help="tile width in the grid (height x1.5)")
    p.add_argument("--out", default=str(ROOT / "docs" / "typography.png"))
    p.add_argument("--engine", default=None, help="generator engine (default: the service's default)")
    args = p.parse_args(argv)
    gen = PosterGenerator.load()
    tw, th, head, side, foot = args.tile, args.tile * 3 // 2, 34, 0, 16  # foot: each tile's layout name
    sheet = Image.new("RGB", (side + tw * len(G.GENRES), head + (th + foot) * 3), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    for c, genre in enumerate(G.GENRES):
        draw.text((side + c * tw + tw / 2, head / 2), G.DISPLAY_NAMES[genre], font=_font("Lato-Black.ttf", 17),
                  fill=(235, 235, 235), anchor="mm")
        engine = {"engine": args.engine} if args.engine else {}
        posters = gen.generate([genre], n=3, seed=args.seed, size="400x600", **engine)
        for r, poster in enumerate(posters):
            titled = gen.typeset([poster], [genre], typography="invented", seed=args.seed + r, layout=r)[0]
            y = head + r * (th + foot)
            sheet.paste(titled.resize((tw, th), Image.Resampling.LANCZOS), (side + c * tw, y))
            draw.text((side + c * tw + tw / 2, y + th + foot / 2), f"layout {r}: {TEMPLATES[genre][r].name}",
                      font=_font("Lato-Regular.ttf", 11), fill=(160, 160, 160), anchor="mm")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # 256 colours (dithered) keep the PNG about a third of the size; the typography stays crisp
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(args.out,
                                                                                                   optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
