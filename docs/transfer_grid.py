"""Render a Genre transfer grid for the README: content photos (rows) x the 7 genres (columns, after the photo), one
block per engine, each tile the app's 384x576 result shown at a third of its size. Only the content photos (public
test images), never posters.

  python docs/transfer_grid.py --engines translate fast --out docs/transfer-translate.jpg
  python docs/transfer_grid.py --engines translate --translator runs/translator/checkpoint --out /tmp/grid.jpg

Tile (photo, genre, engine) is GenreTransfer.transfer(photo, genre, engine=ENGINE, size=(384, 576)) (the fast engine
with its default clean-up): `python -m poster_studio transfer PHOTO --genre GENRE --engine ENGINE` makes it at full size.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from poster_studio import genres as G  # noqa: E402
from poster_studio.images import fit_image, load_image  # noqa: E402
from poster_studio.transfer import GenreTransfer  # noqa: E402

SIZE = (384, 576)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default=str(ROOT.parent / "shared" / "data" / "content"))
    p.add_argument("--photos", nargs="*", default=["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"])
    p.add_argument("--engines", nargs="+", default=["translate", "fast"], choices=GenreTransfer.ENGINES)
    p.add_argument("--translator", default=None, help="translator folder (default checkpoints/translator)")
    p.add_argument("--tile", type=int, default=128, help="tile width (height x1.5)")
    p.add_argument("--out", default=str(ROOT / "docs" / "transfer-translate.jpg"))
    args = p.parse_args(argv)
    gt = GenreTransfer.load(translator_directory=args.translator)
    tw, th, label = args.tile, args.tile * 3 // 2, 18
    photos = [load_image(Path(args.content) / f) for f in args.photos]
    rows = len(photos) * len(args.engines)
    sheet = Image.new("RGB", ((1 + len(G.GENRES)) * tw, label + rows * (th + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, g in enumerate(("picture", *G.GENRES)):
        draw.text((j * tw + 4, 3), g if j == 0 else G.DISPLAY_NAMES[g], fill="black")
    y = label
    for engine in args.engines:
        for name, photo in zip(args.photos, photos):
            draw.text((4, y + 3), f"{engine} engine: {name}", fill="black")
            tiles = [fit_image(photo, SIZE)] + [gt.transfer(photo, g, engine=engine, size=SIZE) for g in G.GENRES]
            for j, im in enumerate(tiles):
                sheet.paste(im.resize((tw, th), Image.Resampling.LANCZOS), (j * tw, y + label))
            y += th + label
            print(f"{engine} {name}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
