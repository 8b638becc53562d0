"""Poster Studio: generate movie posters, classify their genres, and restyle pictures as a genre's poster.

Capabilities, one package each (model.py, service.py, evaluate.py, cli.py):
- `poster_studio.generate`: `PosterGenerator`, the genre-conditioned GAN service.
- `poster_studio.classify`: `Classifier`, genres, Grad-CAM heatmaps and similar posters.
- `poster_studio.transfer`: `GenreTransfer`, restyling a picture as a genre's poster.
Core: `genres` (vocabulary, one parser), `images` (safe loading, image<->tensor, fitting), `data` (poster data
sets), `backbones` (pretrained VGG-19 / EfficientNet-Lite0), `hub` (checkpoints), `checks` (argument checks),
`errors` (typed errors with user-facing text), `device`, `training` (resumable state), `cli`.
The web UI (ui/, app.py) lives outside the library.
"""
__version__ = "0.2.0"

from .errors import BusyError, CheckpointError, InvalidArgumentError, InvalidImageError, PosterStudioError
from .genres import DISPLAY_NAMES, GENRES

__all__ = ["BusyError", "CheckpointError", "DISPLAY_NAMES", "GENRES", "InvalidArgumentError", "InvalidImageError",
           "PosterStudioError"]
