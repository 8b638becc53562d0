"""How readable are genre dreams? The share recognised as their genre by the classifier they were optimised against
(it flatters them) and by a judge that never saw them: the linear genre probe on VGG-19 features
(classify/probe.py). "Recognised" = the genre is the judge's top genre (chance: 1 in 7)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import genres as G
from ..classify.probe import GenreProbe
from .service import Dreamer


def evaluate_dream(dreamer: Dreamer, probe: GenreProbe, genres: Sequence[str] = G.GENRES, seeds: int = 10, *,
                   size: str = Dreamer.DEFAULT_SIZE, steps: int = Dreamer.DEFAULT_STEPS,
                   save_dir: Optional[str | Path] = None) -> dict:
    """Genre dreams for every genre x seed; per genre and overall: top-1 hit rate and mean probability of the
    genre under the classifier and under the probe, and seconds per dream."""
    genres = G.parse_genres(genres)
    if save_dir:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    per_genre, times, hits_c, hits_p = {}, [], [], []
    for g in genres:
        imgs = []
        for s in range(seeds):
            t0 = time.perf_counter()
            imgs.append(dreamer.genre_dream([g], size=size, steps=steps, seed=s))
            times.append(time.perf_counter() - t0)
            if save_dir:
                imgs[-1].save(Path(save_dir) / f"{g}_seed{s}.png")
        pc = dreamer.classifier.predict_proba(imgs)
        pp = probe.predict_proba(imgs)
        ic, ip = dreamer.genres.index(g), probe.genres.index(g)
        hc, hp = pc.argmax(1) == ic, pp.argmax(1) == ip
        hits_c += hc.tolist()
        hits_p += hp.tolist()
        per_genre[g] = {"classifier_hit": round(float(hc.mean()), 3), "probe_hit": round(float(hp.mean()), 3),
                        "classifier_prob": round(float(pc[:, ic].mean()), 3),
                        "probe_prob": round(float(pp[:, ip].mean()), 3),
                        "probe_top": [probe.genres[i] for i in pp.argmax(1)]}
    return {"size": size, "steps": steps, "seeds": seeds, "dreams": len(hits_c),
            "classifier_hit": round(float(np.mean(hits_c)), 3), "probe_hit": round(float(np.mean(hits_p)), 3),
            "chance": round(1 / len(G.GENRES), 3), "seconds_per_dream": round(float(np.mean(times)), 2),
            "per_genre": per_genre}
