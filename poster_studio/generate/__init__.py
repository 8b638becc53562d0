"""Generate: new movie posters for a genre set from a genre-conditioned GAN.

- `PosterGenerator` (service.py): `load()`, `check_inputs()` and its limits, `generate`, `morph`; lower level
  `latents`, `conditions`, `render` for evaluation.
- `ProjectedPosterGAN` + `ProjectedCritic` (Generate v2, in training), `PosterGAN`, `PosterCritic`, the seed baselines `DCGANSeed` / `CGANSeed` and their critics, `ARCHS`,
  `diff_augment` (model.py): the networks and what training needs.
- `evaluate_generator`, `kid`, `fid`, `mean_pairwise_distance` (evaluate.py); `add_cli` (cli.py).
- Typography (issue 23): `PosterTypesetter` and `make_poster` (typography.py: none / your title / invented, for
  generated posters and any picture), the layouts and typesetting (title.py: three layouts per genre, words never
  broken), `TitleModel` (invent.py: invented titles, checkpoints/titles, trained by train/train_titles.py),
  taglines and names (blurbs.py).
Trained by train/train_generator.py; the tab is ui/generate_tab.py.
"""
from .model import (ARCHS, CGANSeed, DCGANSeed, PosterCritic, PosterGAN, ProjectedCritic, ProjectedPosterGAN,
                    diff_augment)
from .invent import TitleModel
from .service import PosterGenerator
from .typography import PosterTypesetter, make_poster

__all__ = ["ARCHS", "CGANSeed", "DCGANSeed", "PosterCritic", "PosterGAN", "PosterGenerator", "ProjectedCritic",
           "PosterTypesetter", "ProjectedPosterGAN", "TitleModel", "diff_augment", "make_poster"]
