"""Generate: new movie posters for a genre set from a genre-conditioned GAN.

- `PosterGenerator` (service.py): `load()`, `check_inputs()` and its limits, `generate`, `morph`; lower level
  `latents`, `conditions`, `render` for evaluation.
- `ProjectedPosterGAN` + `ProjectedCritic` (Generate v2, in training), `PosterGAN`, `PosterCritic`, the seed baselines `DCGANSeed` / `CGANSeed` and their critics, `ARCHS`,
  `diff_augment` (model.py): the networks and what training needs.
- `evaluate_generator`, `kid`, `fid`, `mean_pairwise_distance` (evaluate.py); `add_cli` (cli.py).
Trained by train/train_generator.py; the tab is ui/generate_tab.py.
"""
from .model import (ARCHS, CGANSeed, DCGANSeed, PosterCritic, PosterGAN, ProjectedCritic, ProjectedPosterGAN,
                    diff_augment)
from .service import PosterGenerator

__all__ = ["ARCHS", "CGANSeed", "DCGANSeed", "PosterCritic", "PosterGAN", "PosterGenerator", "ProjectedCritic",
           "ProjectedPosterGAN", "diff_augment"]
