"""Classify: multi-label genres of a poster, Grad-CAM heatmaps, similar known posters.

- `Classifier` (service.py): `load()`, `check_inputs()`, `analyze(image, k) -> Analysis`,
  `heatmap(analysis, genre) -> (genre, PIL)`, `predict`, `predict_proba`.
- `PosterClassifier`, `SeedHead`, `EmbeddingIndex`, `preprocess`, `from_imagenet` (model.py): the networks;
  `PosterEnsemble`, `load_network` (ensemble.py): several PosterClassifiers as one network.
- `multilabel_metrics`, `tune_thresholds`, `evaluate_classifier` (evaluate.py); `add_cli` (cli.py).
Trained by train/train_classifier.py; the tab is ui/classify_tab.py.
"""
from .model import EmbeddingIndex, PosterClassifier, SeedHead, from_imagenet, load_index, preprocess
from .ensemble import PosterEnsemble, load_network
from .service import Analysis, Classifier

__all__ = ["Analysis", "Classifier", "EmbeddingIndex", "PosterClassifier", "PosterEnsemble", "SeedHead", "from_imagenet",
           "load_index", "load_network", "preprocess"]
