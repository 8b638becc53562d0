"""`python -m poster_studio upscale | evaluate-upscaler`."""
from __future__ import annotations

from .. import hub
from ..cli_output import emit_json, output_image_path, save_image
from .evaluate import evaluate_upscaler
from .service import CHECKPOINT_NAME, Upscaler


def _cmd_upscale(args) -> int:
    out = output_image_path(args.out)
    return save_image(Upscaler.load(directory=args.checkpoint, hub_repo=args.hub_repo).upscale(args.image, args.size),
                      out)


def _cmd_evaluate(args) -> int:
    up = Upscaler.load(directory=args.checkpoint, hub_repo=args.hub_repo)
    res = evaluate_upscaler(upscaler=up, n_images=args.n, data_dir=args.data, split=args.split,
                            save_dir=args.save_dir)
    res["checkpoint"] = str(args.checkpoint or hub.resolve(CHECKPOINT_NAME, hub_repo=args.hub_repo))
    return emit_json(res, args.json_out)


def add_cli(sub) -> None:
    p = sub.add_parser("upscale", help="Upscale a poster with the learned upscaler (e.g. to 400x600).")
    p.add_argument("image", metavar="FILE")
    p.add_argument("--size", default="400x600", help="output WxH (default 400x600)")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--checkpoint", default=None, help=f"checkpoint folder (default checkpoints/{CHECKPOINT_NAME})")
    p.add_argument("--hub-repo", default=None)
    p.set_defaults(func=_cmd_upscale)
    e = sub.add_parser("evaluate-upscaler",
                       help="PSNR, VGG distance and speed of Lanczos, bicubic and the upscaler on val posters (JSON).")
    e.add_argument("--data", default=None, help="poster folder (default $POSTER_STUDIO_DATA or ../shared/data/posters)")
    e.add_argument("--split", default="val")
    e.add_argument("--n", type=int, default=100, help="posters, spread over the genres (default 100)")
    e.add_argument("--save-dir", default=None, help="also save the upscaled posters here")
    e.add_argument("--json-out", default=None, help="also write the JSON here")
    e.add_argument("--checkpoint", default=None, help=f"checkpoint folder (default checkpoints/{CHECKPOINT_NAME})")
    e.add_argument("--hub-repo", default=None)
    e.set_defaults(func=_cmd_evaluate)
