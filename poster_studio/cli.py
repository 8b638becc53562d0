"""`python -m poster_studio <command>`: each capability module registers its own subcommands.

A module in COMMAND_MODULES defines `add_cli(subparsers)`, adding parsers whose `func(args) -> int`
does the work through the library. User errors (PosterStudioError) print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "poster_studio.generator",      # generate, evaluate-generator
    "poster_studio.classifier",     # classify, evaluate-classifier
    "poster_studio.transfer",       # transfer, evaluate-transfer
    "poster_studio.hub_cli",        # pull, push
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m poster_studio",
                                     description="Poster Studio: generate, classify and genre-transfer movie posters.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # capability not built yet
            raise
        module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import PosterStudioError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PosterStudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
