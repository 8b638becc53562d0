"""Genre transfer: restyle any picture as a genre's poster, from exemplar posters the classifier picked.

- `GenreTransfer` (service.py): `load()`, `check_inputs()` and its limits, `transfer(...)`, `exemplars(genre)`,
  `style_from_images(...)`.
- `FastEngine` / `AdaINDecoder` / `GatysEngine` / `GatysConfig` (engines.py): the two engines.
- `GenreTranslator`, `PatchDiscriminator`, `CycleGANPair`, `load_translator` (translate.py): the "translate" engine
  (poster -> poster of another genre, one multi-genre network; optional checkpoints/translator).
- `ExemplarBank`, `select_exemplars`, `genre_scores` (exemplars.py): choosing and shipping each genre's exemplars.
- `style.py`: feature statistics (AdaIN, Gram), blending, colour matching and preservation.
- `evaluate_transfer`, `evaluate_translate`, `ssim` (evaluate.py); `add_cli` (cli.py).
Trained / built by train/train_transfer.py, train/build_exemplars.py and train/train_translator.py; the tab is
ui/transfer_tab.py.
"""
from .engines import AdaINDecoder, FastEngine, GatysConfig, GatysEngine
from .exemplars import ExemplarBank, genre_scores, select_exemplars
from .service import GenreTransfer
from .translate import CycleGANPair, GenreTranslator, PatchDiscriminator, load_translator

__all__ = ["AdaINDecoder", "CycleGANPair", "ExemplarBank", "FastEngine", "GatysConfig", "GatysEngine", "GenreTransfer",
           "GenreTranslator", "PatchDiscriminator", "genre_scores", "load_translator", "select_exemplars"]
