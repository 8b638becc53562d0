"""`python -m poster_studio generate | evaluate-generator`."""
from __future__ import annotations

import json
from pathlib import Path

from .. import genres as G
from ..cli_output import emit_json
from .evaluate import evaluate_generator
from .service import PosterGenerator


def _cmd_generate(args) -> int:
    gen = PosterGenerator.load(directory=args.checkpoint)
    # --title auto: invented typography (a typed --tagline / --credits is used instead of its invented part)
    invented = args.title.strip().lower() == "auto"
    typography = "invented" if invented else "title" if args.title else "none"
    engine = gen.check_inputs(typography=typography, title="" if invented else args.title, tagline=args.tagline,
                              credits=args.credits, engine=args.engine, guidance=args.guidance)["engine"]  # refused
    imgs = gen.generate(args.genres or [], n=args.n, seed=args.seed, truncation=args.truncation, size=args.size,
                        engine=engine, guidance=args.guidance)
    titled = gen.typeset(imgs, args.genres or [], "" if invented else args.title, args.tagline, args.credits,
                         typography=typography, seed=args.seed, layout=args.layout,
                         engine=engine) if args.title else []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{'-'.join(G.parse_genres(args.genres)) or 'any'}_seed{args.seed}"
    paths = []
    for i, im in enumerate(imgs):
        paths.append(out / f"{stem}_{i:02d}.png")
        im.save(paths[-1])
        if titled:  # the poster with and without the title
            paths.append(out / f"{stem}_{i:02d}_titled.png")
            titled[i].save(paths[-1])
    net = gen.nets[engine]
    print(json.dumps({"engine": engine, "arch": net.arch, "native_size": list(net.native_size), "size": args.size,
                      "guidance": args.guidance, "files": [str(p) for p in paths]}))
    return 0


def _cmd_evaluate(args) -> int:
    result = evaluate_generator(args.images, args.labels, split=args.split, n_per_genre=args.n_per_genre,
                                checkpoint=args.checkpoint, truncation=args.truncation, seed=args.seed,
                                images_root=args.data_images, copy_check=args.copy_check)
    return emit_json(result, args.json_out)


def add_cli(sub) -> None:
    p = sub.add_parser("generate", help="generate posters for a genre set",
                       description="Write N generated posters (PNG) for the given genres (none = any genre).")
    p.add_argument("--genres", nargs="*", default=[], metavar="G", help=f"genre names ({', '.join(G.GENRES)})")
    p.add_argument("--n", type=int, default=8, help=f"number of posters (1..{PosterGenerator.MAX_COUNT})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=0.7, help="0 < psi <= 1 (lower = safer, less varied)")
    p.add_argument("--size", default="native", help=" or ".join(PosterGenerator.SIZES))
    p.add_argument("--title", default="", help=f"typeset this title onto the posters (at most "
                                                  f"{PosterGenerator.MAX_TITLE} characters), or 'auto': an invented "
                                                  "title, tagline and credits; also writes *_titled.png")
    p.add_argument("--tagline", default="", help="with --title: a tagline")
    p.add_argument("--credits", default="", help="with --title: a credits line (directed by ..., starring ...)")
    p.add_argument("--layout", type=int, default=None, choices=range(3), metavar="0-2",
                   help="with --title: the genre's layout (default: chosen by the seed)")
    p.add_argument("--engine", default=None, metavar="|".join(PosterGenerator.ENGINES),
                   help="latent (Generate v3, the default when installed) or instant (the GAN)")
    p.add_argument("--guidance", type=int, default=0, metavar="STEPS",
                   help=f"latent engine: classifier-guidance steps toward the genres (0..{PosterGenerator.MAX_GUIDANCE}, "
                        "0 = off)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--checkpoint", default=None, help="generator checkpoint folder (default: checkpoints/generator and checkpoints/generator-latent)")
    p.set_defaults(func=_cmd_generate)

    e = sub.add_parser("evaluate-generator", help="KID/FID, conditional accuracy and diversity of generated posters",
                       description="Score generated posters in DIR/<Genre>/*.png against the real posters of each "
                                   "genre. With --checkpoint, first generate --n-per-genre posters per genre into DIR.")
    e.add_argument("--images", required=True, help="folder with one sub-folder of PNGs per genre")
    e.add_argument("--labels", required=True, help="labels.csv of the real posters (images/ beside it)")
    e.add_argument("--split", default="val")
    e.add_argument("--n-per-genre", type=int, default=100)
    e.add_argument("--checkpoint", default=None, help="generator checkpoint folder to sample from first")
    e.add_argument("--truncation", type=float, default=1.0, help="truncation used when sampling (default 1.0)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data-images", default=None, help="real poster folder (default <labels dir>/images)")
    e.add_argument("--json-out", default=None, help="also write the JSON here")
    e.add_argument("--copy-check", action="store_true", help="also each poster's nearest training poster in VGG-19 "
                   "space against the val posters' 2nd percentile (the novelty check under a network that guides "
                   "nothing; the first run computes the training posters' features: minutes)")
    e.set_defaults(func=_cmd_evaluate)
