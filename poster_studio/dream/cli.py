"""`python -m poster_studio dream | evaluate-dream`."""
from __future__ import annotations

import sys

from .. import genres as G
from ..classify.probe import GenreProbe
from ..cli_output import emit_json, output_image_path, save_image
from .evaluate import evaluate_dream
from .service import Dreamer


def _cmd_dream(args) -> int:
    out = output_image_path(args.out)
    dreamer = Dreamer.load(hub_repo=args.hub_repo, directory=args.classifier)

    def progress(frac, _preview):
        print(f"\r{frac * 100:5.1f}%", end="", file=sys.stderr, flush=True)

    img = dreamer.dream(args.genre or None, image=args.image, layer=args.layer, size=args.size, steps=args.steps,
                        iterations=args.iterations, octaves=args.octaves, scale=args.scale, strength=args.strength,
                        seed=args.seed, progress=progress)
    print(file=sys.stderr)
    return save_image(img, out)


def _cmd_evaluate(args) -> int:
    res = evaluate_dream(Dreamer.load(hub_repo=args.hub_repo, directory=args.classifier),
                         GenreProbe.load(hub_repo=args.hub_repo, directory=args.probe), args.genre or G.GENRES,
                         args.seeds, size=args.size, steps=args.steps, save_dir=args.save_dir)
    return emit_json(res, args.json_out)


def add_cli(sub) -> None:
    D = Dreamer
    p = sub.add_parser("dream", help="Run the classifier backwards: a genre dream, or deep dream on a picture.",
                       description="Without --image: a genre dream from noise. With --image and --layer: deep dream "
                                   "(steered toward --genre if given). With --image and --genre only: a genre dream "
                                   "that starts from the picture.")
    p.add_argument("--genre", nargs="+", default=None, metavar="G", help=f"genre names ({', '.join(G.GENRES)})")
    p.add_argument("--image", default=None, metavar="FILE", help="picture to dream on")
    p.add_argument("--layer", default=None, help=f"deep dream layer: a VGG-19 layer (relu1_1 ... relu5_1) or "
                                                 f"classifier.block0 ... classifier.block6 (fastest: "
                                                 f"{D.DEFAULT_LAYER})")
    p.add_argument("--size", default=None, help=f"WxH, or 'picture' / 'picture-N' (the picture's shape, long side "
                                                f"{D.PICTURE_LONG_SIDE} / N); default {D.DEFAULT_SIZE} for a genre "
                                                f"dream, 'picture' for deep dream")
    p.add_argument("--steps", type=int, default=D.DEFAULT_STEPS, help=f"genre dream steps (1..{D.MAX_STEPS})")
    p.add_argument("--iterations", type=int, default=D.DEFAULT_ITERATIONS,
                   help=f"deep dream iterations per octave (1..{D.MAX_ITERATIONS})")
    p.add_argument("--octaves", type=int, default=D.DEFAULT_OCTAVES, help="deep dream octaves")
    p.add_argument("--scale", type=float, default=D.DEFAULT_SCALE, help="deep dream octave scale")
    p.add_argument("--strength", type=float, default=1.0, help="0..1: step size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--classifier", default=None, help="classifier checkpoint folder (default checkpoints/classifier)")
    p.add_argument("--hub-repo", default=None)
    p.set_defaults(func=_cmd_dream)
    e = sub.add_parser("evaluate-dream", help="Genre dreams judged by the classifier and by the VGG-19 probe (JSON).")
    e.add_argument("--genre", nargs="+", default=None, help="genres (default all 7)")
    e.add_argument("--seeds", type=int, default=10)
    e.add_argument("--size", default=D.DEFAULT_SIZE)
    e.add_argument("--steps", type=int, default=D.DEFAULT_STEPS)
    e.add_argument("--save-dir", default=None, help="also save the dreams here")
    e.add_argument("--json-out", default=None)
    e.add_argument("--classifier", default=None, help="classifier checkpoint folder (default checkpoints/classifier)")
    e.add_argument("--probe", default=None, help="probe checkpoint folder (default checkpoints/probe)")
    e.add_argument("--hub-repo", default=None)
    e.set_defaults(func=_cmd_evaluate)
