"""Genre transfer: restyle any picture as a genre's poster, from exemplar posters the classifier picked.

- `GenreTransfer` (service.py): `load()`, `check_inputs()` and its limits, `transfer(...)`, `exemplars(genre)`,
  `style_from_images(...)`.
- `FastEngine` / `AdaINDecoder` / `GatysEngine` / `GatysConfig` (engines.py): the two engines.
- `ExemplarBank`, `select_exemplars`, `genre_scores` (exemplars.py): choosing and shipping each genre's exemplars.
- `style.py`: feature statistics (AdaIN, Gram), blending, colour matching and preservation.
- `evaluate_transfer`, `ssim` (evaluate.py); `add_cli` (cli.py).
Trained / built by train/train_transfer.py and train/build_exemplars.py; the tab is ui/transfer_tab.py.
"""
from .engines import AdaINDecoder, FastEngine, GatysConfig, GatysEngine
from .exemplars import ExemplarBank, genre_scores, select_exemplars
from .service import GenreTransfer

__all__ = ["AdaINDecoder", "ExemplarBank", "FastEngine", "GatysConfig", "GatysEngine", "GenreTransfer",
           "genre_scores", "select_exemplars"]
