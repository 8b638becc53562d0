"""How good genre transfer is: the genre hit rate of restyled pictures under the project's classifier (which
picked the exemplars) and under a second judge that did not (the VGG-19 genre probe, when its checkpoint is there),
content kept (SSIM of luma), dark blotches over bright smooth regions (`blotch_share`) and seconds per image
(`evaluate_transfer`).

`evaluate_translate`: the translate engine on val posters (never trained on), per target genre, beside the fast
engine on the same inputs and the untouched inputs: hit rates under both judges, SSIM and VGG-19 feature distance
(upscale.evaluate.feature_distance) to the input, KID (generate.evaluate's, EfficientNet-Lite0 features) against the
real val posters of the target genre."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .. import genres as G
from ..classify import Classifier  # the judge that picked the exemplars
from ..classify.probe import GenreProbe  # the judge that did not
from ..data import default_data_dir, read_labels, spread_sample
from ..errors import CheckpointError, InvalidArgumentError
from ..images import fit_image, load_image, to_tensor
from .service import GenreTransfer
from .style import box_filter, rgb_to_yiq


def _luma(im: Image.Image) -> torch.Tensor:
    """(1, 1, H, W) luma in [0, 1]."""
    return rgb_to_yiq(to_tensor(im)[None])[:, :1]


def ssim(a: Image.Image, b: Image.Image) -> float:
    """SSIM of the luma channels (Gaussian window 11, sigma 1.5; Wang et al. 2004)."""
    x, y = _luma(a) * 255.0, _luma(b.resize(a.size, Image.Resampling.BICUBIC)) * 255.0
    g = torch.exp(-(torch.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    g = (g / g.sum())
    k = (g[:, None] * g[None, :]).view(1, 1, 11, 11)
    mu_x, mu_y = F.conv2d(x, k), F.conv2d(y, k)
    sxx = F.conv2d(x * x, k) - mu_x ** 2
    syy = F.conv2d(y * y, k) - mu_y ** 2
    sxy = F.conv2d(x * y, k) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(m.mean())


BRIGHT, SMOOTH = 0.55, 0.04  # luma in [0, 1]; local std over a 9x9 window
DARKER, NEIGHBOURHOOD, OFFSET = 0.30, 15, 0.05  # relative darkening; window radius (31x31); dark-level offset


def blotch_share(content: Image.Image, output: Image.Image) -> float:
    """The artefact measure (issue 21): of the input's bright, smooth pixels (luma >= BRIGHT, local standard deviation
    of luma <= SMOOTH over 9x9: skin, sky, a white suit), the share that the output makes darker than their
    neighbourhood, by DARKER (30%) more than the input was. A pixel's relative darkness is
    1 - (its 5x5-blurred luma + OFFSET) / (the mean luma of the bright smooth pixels within 31x31 + OFFSET), in the
    input and in the output alike, so a colour grade, even a very dark one (a Horror palette), counts for nothing:
    it moves a pixel and its neighbourhood together; the fast engine's dark blotches and outlines on skin or sky
    do count. Texture and grain are blurred away (5x5); what lies outside the bright smooth regions is never
    counted nor used as a reference. 0 when the input has no bright smooth region."""
    x, y = _luma(content), _luma(output.resize(content.size, Image.Resampling.BICUBIC))
    mean9 = F.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
    std9 = (F.avg_pool2d(x * x, 9, 1, 4, count_include_pad=False) - mean9 ** 2).clamp_min(0).sqrt()
    region = (x >= BRIGHT) & (std9 <= SMOOTH)
    if not bool(region.any()):
        return 0.0
    m = region.float()
    weight = box_filter(m, NEIGHBOURHOOD).clamp_min(1e-6)

    def darkness(z: torch.Tensor) -> torch.Tensor:
        around = box_filter(z * m, NEIGHBOURHOOD) / weight
        return 1 - (F.avg_pool2d(z, 5, 1, 2, count_include_pad=False) + OFFSET) / (around + OFFSET)

    return float(((darkness(y) - darkness(x))[region] > DARKER).float().mean())


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _judges(classifier, probe):
    """The project classifier and the VGG-19 probe (None when its checkpoint is missing: reported without it)."""
    if classifier is None:
        classifier = Classifier.load()
    if probe is None:
        try:
            probe = GenreProbe.load()
        except CheckpointError:
            probe = None
    return classifier, probe


def evaluate_transfer(content_dir: Optional[str | os.PathLike], genres: Sequence[str], *, engine: str = "fast",
                      strength: float = 1.0, size=(384, 576), steps: Optional[int] = None,
                      transfer: Optional[GenreTransfer] = None, classifier=None, save_dir=None,
                      n_val_posters: int = 0, data_dir=None, probe=None, clean: bool = True) -> dict:
    """Hit rate (top-1 genre of the project's classifier == target), SSIM vs the (fitted) input, s/image.
    Content: the images in `content_dir` plus `n_val_posters` validation posters (see val_posters)."""
    files = []
    if content_dir is not None:
        folder = Path(content_dir)
        if not folder.is_dir():
            raise InvalidArgumentError(f"Content folder not found: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if n_val_posters:
        files += spread_sample(n_val_posters, data_dir)
    if not files:
        raise InvalidArgumentError(f"No content images in {content_dir}.")
    gs = [G.parse_genre(g) for g in genres]
    if not gs:
        raise InvalidArgumentError("Give at least one genre.")
    classifier, probe = _judges(classifier, probe)
    gt = transfer or GenreTransfer.load()
    w, h = gt.check_inputs(content=files[0], genre=gs[0], engine=engine, size=size, steps=steps)["size"]
    contents = [fit_image(load_image(f), (w, h)) for f in files]
    result = {"engine": engine, "strength": strength, "size": f"{w}x{h}", "images": len(files),
              **({"clean": clean} if engine == "fast" else {}),
              "content": [f.name for f in files],
              "content_preservation": "SSIM of luma vs the input fitted to the output size (1 = identical)",
              "artefacts": "blotches: share of the input's bright smooth pixels the output makes darker than their "
                           "neighbourhood (blotch_share; a colour grade counts 0; 0 = clean)",
              "genres": {}}
    base = classifier.predict_proba(contents)
    result["input_top1_share"] = {g: round(float((base.argmax(1) == G.GENRES.index(g)).mean()), 4) for g in gs}
    for g in gs:
        outs, t0 = [], time.perf_counter()
        for c in contents:
            outs.append(gt.transfer(c, g, engine=engine, strength=strength, size=(w, h), steps=steps, clean=clean))
        sec = (time.perf_counter() - t0) / len(contents)
        probs = classifier.predict_proba(outs)
        hit = float((probs.argmax(1) == G.GENRES.index(g)).mean())
        if probe is not None:
            result["genres"][g] = {"hit_rate_probe": round(float((probe.predict_proba(outs).argmax(1)
                                                                  == G.GENRES.index(g)).mean()), 4)}
        result["genres"][g] = {**result["genres"].get(g, {}), "hit_rate": round(hit, 4),
                               "mean_target_prob": round(float(probs[:, G.GENRES.index(g)].mean()), 4),
                               "ssim": round(float(np.mean([ssim(c, o) for c, o in zip(contents, outs)])), 4),
                               "blotches": round(float(np.mean([blotch_share(c, o) for c, o in zip(contents, outs)])),
                                                 4),
                               "seconds_per_image": round(sec, 3)}
        if save_dir is not None:
            d = Path(save_dir) / g
            d.mkdir(parents=True, exist_ok=True)
            for f, o in zip(files, outs):
                o.save(d / f"{f.stem}.jpg", quality=90)
    per = result["genres"].values()
    result["average"] = {k: round(float(np.mean([r[k] for r in per])), 4)
                         for k in ("hit_rate", "hit_rate_probe", "mean_target_prob", "ssim", "blotches",
                                   "seconds_per_image")
                         if all(k in r for r in per)}
    return result


def evaluate_translate(genres: Optional[Sequence[str]] = None, *, n_inputs: int = 100,
                       sources: Optional[Sequence[str]] = None, size=(256, 384), strength: float = 1.0,
                       engines: Sequence[str] = ("translate", "fast"), transfer: Optional[GenreTransfer] = None,
                       classifier=None, probe=None, data_dir=None, save_dir=None, kid_cache=None) -> dict:
    """Translate engine vs the fast engine (and the untouched inputs) per target genre (default: all the translator
    reaches). Inputs: `n_inputs` val posters spread over the genres (only those labelled with one of `sources`
    when given); for a target genre, the inputs not already labelled with it. Per engine: hit_rate (top-1 genre
    of the classifier == target), hit_rate_probe (same under the VGG-19 probe), mean_target_prob, ssim and
    vgg_distance to the input, kid to the real val posters of the target genre, seconds_per_image."""
    from ..generate.evaluate import CACHE_DIR, effnet_features, kid, real_features
    from ..upscale.evaluate import feature_distance

    data = Path(data_dir) if data_dir else default_data_dir()
    gt = transfer or GenreTransfer.load()
    if gt.translator is None:
        raise CheckpointError(gt.translator_missing)
    labels = {r.id: r.genres for r in read_labels(data / "labels.csv")}
    srcs = set(G.parse_genres(sources)) if sources else None
    files = [f for f in spread_sample(10**9, data, "val") if srcs is None or srcs & set(labels[f.stem])]
    files = files[:n_inputs]
    if not files:
        raise InvalidArgumentError(f"No val posters{' of ' + ', '.join(sorted(srcs)) if srcs else ''} in {data}.")
    gs = [gt.check_inputs(content=files[0], genre=g, engine="translate", size=size)["genre"]
          for g in (genres or gt.translate_genres)]
    w, h = gt.check_inputs(content=files[0], genre=gs[0], engine="translate", size=size)["size"]
    engines = [e for e in engines if e == "translate" or (e == "bridge" and gt.bridge is not None)
               or (e not in ("translate", "bridge") and gt.bank is not None)]
    classifier, probe = _judges(classifier, probe)
    contents = [fit_image(load_image(f), (w, h)) for f in files]
    real_f, real_l = real_features(data / "labels.csv", "val", cache_dir=Path(kid_cache) if kid_cache else CACHE_DIR)

    def scores(images, gi, rows=None) -> dict:
        probs = classifier.predict_proba(images)
        out = {"hit_rate": float((probs.argmax(1) == gi).mean()), "mean_target_prob": float(probs[:, gi].mean())}
        if probe is not None:
            out["hit_rate_probe"] = float((probe.predict_proba(images).argmax(1) == gi).mean())
        out["kid"] = kid(effnet_features(images), real_f[real_l[:, gi] == 1])[0]
        if rows is not None:
            a = torch.stack([to_tensor(contents[i]) for i in rows])
            b = torch.stack([to_tensor(o) for o in images])
            out["ssim"] = float(np.mean([ssim(contents[i], o) for i, o in zip(rows, images)]))
            out["vgg_distance"] = float(torch.cat([feature_distance(a[j: j + 16], b[j: j + 16]).cpu()
                                                   for j in range(0, len(a), 16)]).mean())
        return out

    tr = gt.translator
    result = {"size": f"{w}x{h}", "strength": strength, "split": "val", "inputs": len(files),
              "sources": sorted(srcs) if srcs else "all genres", "engines": engines,
              "translator": {"arch": getattr(tr, "arch", "?"), "genres": list(tr.genres), "native": list(tr.size)},
              "judges": {"hit_rate": "project classifier (EfficientNet-Lite0)", "hit_rate_probe": "VGG-19 linear probe"},
              "kid": "EfficientNet-Lite0 features @128x192 vs the real val posters of the target genre",
              "vgg_distance": "LPIPS-like VGG-19 relu2_1+relu3_1 distance to the input (0 = identical)",
              "genres": {}}
    for g in gs:
        gi = G.GENRES.index(g)
        rows = [i for i, f in enumerate(files) if g not in labels[f.stem]]
        if not rows:
            continue
        entry = {"inputs": len(rows), "input": scores([contents[i] for i in rows], gi)}
        for eng in engines:
            t0 = time.perf_counter()
            outs = [gt.transfer(contents[i], g, engine=eng, strength=strength, size=(w, h)) for i in rows]
            sec = (time.perf_counter() - t0) / len(rows)
            entry[eng] = {**scores(outs, gi, rows), "seconds_per_image": sec}
            if save_dir is not None:
                d = Path(save_dir) / eng / g
                d.mkdir(parents=True, exist_ok=True)
                for i, o in zip(rows, outs):
                    o.save(d / f"{files[i].stem}.jpg", quality=90)
        result["genres"][g] = {k: {m: round(float(v), 4) for m, v in e.items()} if isinstance(e, dict) else e
                               for k, e in entry.items()}
    per = list(result["genres"].values())
    result["average"] = {e: {m: round(float(np.mean([r[e][m] for r in per])), 4) for m in per[0][e]}
                         for e in ["input", *engines]} if per else {}
    return result
