"""Poster Studio: generate movie posters, classify their genres, and restyle pictures as a genre's poster.

Modules: genres (vocabulary), images (safe image loading), data (poster datasets), backbones (pretrained
VGG-19 / EfficientNet-Lite0), hub (checkpoints), classifier, generator, transfer, cli.
"""
__version__ = "0.1.0"

from .errors import CheckpointError, InvalidArgumentError, InvalidImageError, PosterStudioError  # noqa: F401
from .genres import DISPLAY_NAMES, GENRES  # noqa: F401
