"""Dream: run the poster classifier backwards.

- `Dreamer` (service.py): `load()`, `check_inputs()` and its limits, `genre_dream(genres, image=None)`,
  `deep_dream(image, layer, genres=None)`, `dream(...)` (the CLI's / API's dispatch).
- render.py: the feature-visualisation recipe (decorrelated Fourier image, random views, octaves, the loop).
- deepdream.py: classic deep dream (octave pyramid, jitter, normalised gradient ascent).
- `evaluate_dream` (evaluate.py): how often the classifier, and a probe that never saw it, see the genre; `add_cli`.
Principal masks live with the classifier (poster_studio.classify.masks). The tab is ui/dream_tab.py.
"""
from .service import Dreamer

__all__ = ["Dreamer"]
