"""`python -m poster_studio <command>`: each capability package adds its subcommands (its cli.py), this module
adds the Hugging Face Hub round trip (`pull`, `push`). User errors (PosterStudioError) print one line and exit 2.

    python -m poster_studio pull --hub-repo USER/poster-studio [--revision R] [--name classifier ...]
    python -m poster_studio push classifier --hub-repo USER/poster-studio [--private]

`pull` downloads a pinned revision into the local Hugging Face cache (what the app then uses with
POSTER_STUDIO_HUB_REPO set) and prints the snapshot folder; `push` uploads checkpoints/<NAME>/ into <repo>/<NAME>/.
"""
from __future__ import annotations

import argparse
import json
import sys

from . import hub
from .classify import cli as classify_cli
from .dream import cli as dream_cli
from .errors import InvalidArgumentError, PosterStudioError
from .generate import cli as generate_cli
from .transfer import cli as transfer_cli
from .upscale import cli as upscale_cli

KNOWN_MODELS = ("classifier", "generator", "generator-latent", "transfer", "titles")


def _check_repo(repo: str) -> str:
    repo = (repo or "").strip()
    if not repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/") or " " in repo:
        raise InvalidArgumentError(f"--hub-repo must look like USER/NAME, got {repo!r}.")
    return repo


def _cmd_pull(args: argparse.Namespace) -> int:
    folder = hub.pull(_check_repo(args.hub_repo), args.revision, names=args.name or None)
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / "model.safetensors").is_file())
    print(json.dumps({"snapshot": str(folder), "models": found}, indent=2))
    print(f"Use it with: {hub.HUB_REPO_ENV}={args.hub_repo} python app.py", flush=True)
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    url = hub.push(args.name, _check_repo(args.hub_repo), private=args.private,
                   folder=args.folder, commit_message=args.message)
    print(url)
    return 0


def add_hub_cli(sub) -> None:
    p = sub.add_parser("pull", help="download the checkpoints from a Hugging Face Hub repo into the local cache")
    p.add_argument("--hub-repo", required=True, metavar="REPO_ID", help="e.g. USER/poster-studio")
    p.add_argument("--revision", default=None, help=f"branch, tag or commit (default ${hub.HUB_REVISION_ENV} or main)")
    p.add_argument("--name", nargs="+", default=None, metavar="MODEL",
                   help=f"only these models ({', '.join(KNOWN_MODELS)}); default all")
    p.set_defaults(func=_cmd_pull)

    q = sub.add_parser("push", help="upload checkpoints/NAME/ to a Hugging Face Hub repo")
    q.add_argument("name", metavar="NAME", help=f"checkpoint folder name ({', '.join(KNOWN_MODELS)})")
    q.add_argument("--hub-repo", required=True, metavar="REPO_ID")
    q.add_argument("--private", action="store_true", help="create the repo as private")
    q.add_argument("--folder", default=None, help="push this folder instead of checkpoints/NAME/")
    q.add_argument("--message", default=None, help="commit message")
    q.set_defaults(func=_cmd_push)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m poster_studio",
                                     description="Poster Studio: generate, classify, genre-transfer and dream "
                                                 "movie posters.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    generate_cli.add_cli(sub)      # generate, evaluate-generator
    classify_cli.add_cli(sub)      # classify, evaluate-classifier
    transfer_cli.add_cli(sub)      # transfer, evaluate-transfer
    dream_cli.add_cli(sub)         # dream, evaluate-dream
    upscale_cli.add_cli(sub)       # upscale, evaluate-upscaler
    add_hub_cli(sub)               # pull, push
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PosterStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
