"""`python -m poster_studio transfer | evaluate-transfer | evaluate-translate`."""
from __future__ import annotations

import sys

from .. import genres as G
from .. import hub
from ..classify import Classifier
from ..cli_output import emit_json, output_image_path, save_image
from ..images import FIT_MODES
from .engines import DEFAULT_STEPS
from .evaluate import evaluate_transfer, evaluate_translate
from .service import CHECKPOINT_NAME, GenreTransfer
from .translate import CHECKPOINT_NAME as TRANSLATOR_NAME


def _cmd_transfer(args) -> int:
    gt = GenreTransfer.load(hub_repo=args.hub_repo, directory=args.checkpoint, translator_directory=args.translator)
    out = output_image_path(args.out)

    def progress(frac, _preview):
        print(f"\r{frac * 100:5.1f}%", end="", file=sys.stderr, flush=True)

    img = gt.transfer(args.content, args.genre, engine=args.engine, strength=args.strength,
                      preserve_color=args.preserve_color, size=args.size, style_images=args.style or None,
                      steps=args.steps, fit=args.fit, progress=progress if args.engine == "quality" else None,
                      clean=not args.no_clean)
    if args.engine == "quality":
        print(file=sys.stderr)
    return save_image(img, out)


def _classifier(args):
    return Classifier.load(hub_repo=args.hub_repo, directory=args.classifier)


def _cmd_evaluate(args) -> int:
    res = evaluate_transfer(args.content, args.genre, engine=args.engine, strength=args.strength, size=args.size,
                            steps=args.steps, transfer=GenreTransfer.load(hub_repo=args.hub_repo,
                                                                          directory=args.checkpoint,
                                                                          translator_directory=args.translator),
                            save_dir=args.save_dir, n_val_posters=args.val_posters, classifier=_classifier(args),
                            clean=not args.no_clean)
    res["classifier_checkpoint"] = str(args.classifier or hub.resolve("classifier", hub_repo=args.hub_repo))
    res["transfer_checkpoint"] = str(args.checkpoint or hub.resolve(CHECKPOINT_NAME, hub_repo=args.hub_repo))
    return emit_json(res, args.json_out)


def _cmd_evaluate_translate(args) -> int:
    gt = GenreTransfer.load(hub_repo=args.hub_repo, directory=args.checkpoint, translator_directory=args.translator)
    engines = ("translate",) + (() if args.no_fast else ("fast",)) + (("bridge",) if args.bridge else ())
    res = evaluate_translate(args.genre, n_inputs=args.n_inputs, sources=args.sources, size=args.size,
                             strength=args.strength, engines=engines,
                             transfer=gt, classifier=_classifier(args), data_dir=args.data, save_dir=args.save_dir)
    res["classifier_checkpoint"] = str(args.classifier or hub.resolve("classifier", hub_repo=args.hub_repo))
    res["translator_checkpoint"] = str(args.translator or hub.resolve(TRANSLATOR_NAME, hub_repo=args.hub_repo))
    return emit_json(res, args.json_out)


def add_cli(sub) -> None:
    p = sub.add_parser("transfer", help="Restyle a picture as a genre's poster (or as your style images).")
    p.add_argument("--content", required=True, metavar="FILE")
    p.add_argument("--genre", default=None, help=f"one of {', '.join(G.GENRES)}")
    p.add_argument("--engine", choices=GenreTransfer.ENGINES, default="fast")
    p.add_argument("--strength", type=float, default=1.0, help="0 = content, 1 = full style (default)")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--no-clean", action="store_true", help="fast engine: skip the guided-filter clean-up (more of "
                   "the decoder's texture, and its dark blotches)")
    p.add_argument("--size", default="384x576", help="output WxH (default 384x576)")
    p.add_argument("--style", nargs="+", metavar="FILE", help="style images replacing the genre's exemplars")
    p.add_argument("--steps", type=int, default=None, help=f"quality engine steps (default {DEFAULT_STEPS}, at most "
                                                            f"{GenreTransfer.MAX_STEPS})")
    p.add_argument("--fit", choices=FIT_MODES, default="crop",
                   help="a picture that is not 2:3: crop its centre (default) or fit it whole on a blurred backdrop")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default checkpoints/transfer)")
    p.add_argument("--translator", default=None, help="translate engine folder (default checkpoints/translator)")
    p.add_argument("--hub-repo", default=None)
    p.set_defaults(func=_cmd_transfer)
    e = sub.add_parser("evaluate-transfer", help="Genre hit rate, SSIM and speed of transfer over a folder (JSON).")
    e.add_argument("--content", required=True, metavar="DIR")
    e.add_argument("--val-posters", type=int, default=0,
                   help="also use N validation posters from $POSTER_STUDIO_DATA (spread over genres)")
    e.add_argument("--genre", nargs="+", required=True)
    e.add_argument("--engine", choices=GenreTransfer.ENGINES, default="fast")
    e.add_argument("--strength", type=float, default=1.0)
    e.add_argument("--size", default="384x576")
    e.add_argument("--steps", type=int, default=None)
    e.add_argument("--no-clean", action="store_true", help="fast engine without its guided-filter clean-up")
    e.add_argument("--save-dir", default=None, help="also save the transferred images here")
    e.add_argument("--json-out", default=None, help="also write the JSON here")
    e.add_argument("--checkpoint", default=None, help="transfer checkpoint folder (default checkpoints/transfer)")
    e.add_argument("--translator", default=None, help="--engine translate: translator folder (default "
                   "checkpoints/translator)")
    e.add_argument("--classifier", default=None, help="classifier checkpoint folder (default checkpoints/classifier)")
    e.add_argument("--hub-repo", default=None)
    e.set_defaults(func=_cmd_evaluate)
    t = sub.add_parser("evaluate-translate", help="The translate engine beside the fast engine on val posters: hit "
                       "rates under two judges, SSIM, VGG distance, KID per target genre (JSON).")
    t.add_argument("--genre", nargs="+", default=None, help="target genres (default: all the translator reaches)")
    t.add_argument("--n-inputs", type=int, default=100, help="val posters translated (spread over the genres)")
    t.add_argument("--sources", nargs="+", default=None, help="only val posters labelled with one of these genres")
    t.add_argument("--size", default="256x384", help="output WxH of both engines (default 256x384)")
    t.add_argument("--strength", type=float, default=1.0)
    t.add_argument("--no-fast", action="store_true", help="leave out the fast engine")
    t.add_argument("--bridge", action="store_true", help="add the bridge engine (needs checkpoints/generator-latent)")
    t.add_argument("--data", default=None, help="poster folder (default $POSTER_STUDIO_DATA or ../shared/data/posters)")
    t.add_argument("--save-dir", default=None, help="also save the outputs here (<engine>/<genre>/<id>.jpg)")
    t.add_argument("--json-out", default=None, help="also write the JSON here")
    t.add_argument("--checkpoint", default=None, help="transfer checkpoint folder (default checkpoints/transfer)")
    t.add_argument("--translator", default=None, help="translator folder (default checkpoints/translator)")
    t.add_argument("--classifier", default=None, help="classifier checkpoint folder (default checkpoints/classifier)")
    t.add_argument("--hub-repo", default=None)
    t.set_defaults(func=_cmd_evaluate_translate)
