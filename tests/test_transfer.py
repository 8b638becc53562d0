"""Genre transfer: exemplar selection, both engines, the service API, checkpoints, CLI and resumable training.

Everything runs on tiny synthetic data (no poster folder, no network): a width-4 decoder and exemplar
statistics computed from generated images stand in for the real checkpoint.
"""
from __future__ import annotations

import csv
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))

from poster_studio import genres as G  # noqa: E402
from poster_studio import hub  # noqa: E402
from poster_studio.errors import CheckpointError, InvalidArgumentError  # noqa: E402
from poster_studio.exemplars import select_exemplars  # noqa: E402
from poster_studio.transfer import (AdaINDecoder, ExemplarBank, GatysConfig, GatysEngine, GenreTransfer,  # noqa: E402
                                    evaluate_transfer, rgb_to_yiq, ssim, to_tensor)

torch.set_num_threads(1)


def _pattern(seed: int, w: int = 48, h: int = 72) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    freq = rng.uniform(0.1, 0.6, 2)
    a = np.stack([base[c] * 0.5 + 100 * np.sin(xx * freq[0] + c) * np.cos(yy * freq[1]) for c in range(3)], -1)
    a += rng.normal(0, 20, a.shape)
    return Image.fromarray(np.clip(a + 60, 0, 255).astype(np.uint8))


def _fake_index(n: int = 14, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(n, 128, generator=g), dim=1)
    probs = torch.rand(n, len(G.GENRES), generator=g) * 0.5
    return SimpleNamespace(ids=[f"p{i:03d}" for i in range(n)], titles=[f"Poster {i}" for i in range(n)],
                           years=[str(1990 + i) for i in range(n)], embeddings=emb, probs=probs)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A complete transfer checkpoint folder: tiny decoder + exemplar statistics from synthetic posters."""
    from build_exemplars import build_bank

    root = tmp_path_factory.mktemp("ckpt")
    images = root / "images"
    images.mkdir()
    index = _fake_index()
    for i, pid in enumerate(index.ids):
        _pattern(i).save(images / f"{pid}.jpg")
    folder = root / "checkpoints" / "transfer"
    torch.manual_seed(0)
    hub.save_checkpoint(AdaINDecoder(width=4), folder, description="test")
    bank = build_bank(index, images, method="seed", k=2, style_size=(48, 72))
    bank.save(folder)
    return folder


@pytest.fixture(scope="module")
def gt(checkpoint):
    return GenreTransfer.load(directory=checkpoint)


@pytest.fixture(scope="module")
def content():
    return _pattern(99, 80, 60)


# ------------------------------------------------------------------------------------------- exemplars
def test_seed_selection_is_top_probability_plus_nearest_neighbours():
    idx = _fake_index(30)
    gi = G.GENRES.index("Horror_Thriller")
    idx.probs[17, gi] = 0.99  # the most confident poster
    # make posters 3 and 8 the closest to poster 17 in the embedding, 3 closer than 8
    idx.embeddings[3] = torch.nn.functional.normalize(idx.embeddings[17] + 0.05 * idx.embeddings[3], dim=0)
    idx.embeddings[8] = torch.nn.functional.normalize(idx.embeddings[17] + 0.2 * idx.embeddings[8], dim=0)
    rows, weights = select_exemplars(idx.embeddings, idx.probs, "horror", method="seed", k=2)
    assert rows == [17, 3, 8]
    assert weights == pytest.approx([1 / 3] * 3)
    top, _ = select_exemplars(idx.embeddings, idx.probs, "horror", method="topk", k=3)
    assert top[0] == 17 and len(top) == 4
    assert list(idx.probs[top, gi]) == sorted(idx.probs[top, gi].tolist(), reverse=True)
    cl, w = select_exemplars(idx.embeddings, idx.probs, "horror", method="clusters", k=2, pool=12)
    assert len(set(cl)) == len(cl) <= 3 and sum(w) == pytest.approx(1.0)
    with pytest.raises(InvalidArgumentError):
        select_exemplars(idx.embeddings, idx.probs, "horror", method="nope")


def test_margin_score_prefers_unambiguous_posters():
    idx = _fake_index(10)
    gi = G.GENRES.index("Comedy")
    idx.probs[2, gi], idx.probs[2, 0] = 0.95, 0.94  # confident but ambiguous
    idx.probs[5, gi] = 0.9
    assert select_exemplars(idx.embeddings, idx.probs, "comedy", method="topk", k=0)[0] == [2]
    assert select_exemplars(idx.embeddings, idx.probs, "comedy", method="topk", k=0, score="margin")[0] == [5]


# ------------------------------------------------------------------------------------------- service
def test_exemplars_and_checkpoint_round_trip_via_hub(checkpoint, monkeypatch):
    monkeypatch.setenv(hub.CHECKPOINTS_ENV, str(checkpoint.parent))
    monkeypatch.delenv(hub.HUB_REPO_ENV, raising=False)
    loaded = GenreTransfer.load()
    assert loaded.decoder.width == 4
    ex = loaded.exemplars("Drama")
    assert len(ex) == 3 and set(ex[0]) == {"id", "title", "year"}
    ref = hub.load_model(AdaINDecoder, "transfer")
    for a, b in zip(ref.state_dict().values(), loaded.decoder.state_dict().values()):
        assert torch.equal(a, b)
    bank = ExemplarBank.load(checkpoint)
    assert bank.style("drama").gram["relu5_1"].shape == (512, 512)


def test_missing_or_corrupt_checkpoint_raises_checkpoint_error(tmp_path, checkpoint):
    with pytest.raises(CheckpointError):
        GenreTransfer.load(directory=tmp_path / "nothing")
    import shutil
    bad = tmp_path / "transfer"
    shutil.copytree(checkpoint, bad)
    (bad / "exemplars.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="exemplars"):
        GenreTransfer.load(directory=bad)


def test_fast_output_size_and_strength_zero(gt, content):
    out = gt.transfer(content, "comedy", size=(96, 144))
    assert out.size == (96, 144) and out.mode == "RGB"
    same = gt.transfer(content, "comedy", size=(96, 144), strength=0.0)
    from poster_studio.data import fit_poster
    ref = np.asarray(fit_poster(content, 96, 144), dtype=np.float32)
    assert np.abs(np.asarray(same, dtype=np.float32) - ref).mean() < 1.0
    assert ssim(fit_poster(content, 96, 144), same) > 0.99


def test_preserve_color_keeps_content_chroma(gt, content):
    from poster_studio.data import fit_poster
    ref = to_tensor(fit_poster(content, 96, 144))
    plain = to_tensor(gt.transfer(content, "horror", size=(96, 144)))
    kept = to_tensor(gt.transfer(content, "horror", size=(96, 144), preserve_color=True))

    def chroma(x):
        return rgb_to_yiq(x)[0, 1:].flatten(1)

    d_kept = (chroma(kept) - chroma(ref)).abs().mean()
    d_plain = (chroma(plain) - chroma(ref)).abs().mean()
    assert d_kept < 0.03 and d_kept < d_plain


def test_user_style_images_replace_genre(gt, content):
    styles = [_pattern(200), _pattern(201)]
    out = gt.transfer(content, None, style_images=styles, size=(64, 96))
    assert out.size == (64, 96)
    out_q = gt.transfer(content, None, engine="quality", style_images=styles, size=(64, 96), steps=2)
    assert out_q.size == (64, 96)


@pytest.mark.parametrize("kwargs", [
    {"strength": float("nan")}, {"strength": -0.1}, {"strength": 1.5}, {"size": (10, 96)}, {"size": (64, 5000)},
    {"size": "abc"}, {"steps": 0}, {"steps": 5000}, {"steps": float("nan")}, {"engine": "turbo"},
    {"genre": None}, {"genre": "westerns"},
])
def test_bad_arguments_raise_invalid_argument(gt, content, kwargs):
    kw = {"genre": "drama", **kwargs}
    with pytest.raises(InvalidArgumentError):
        gt.transfer(content, **kw)


# ------------------------------------------------------------------------------------------- quality engine
def test_quality_engine_lowers_loss_progress_and_cancel(gt, content):
    x = to_tensor(content.resize((64, 96)))
    style = gt.bank.style("animation")
    hist = []
    eng = GatysEngine(GatysConfig(preview_every=2))
    calls = []
    out = eng.run(x, style.gram, steps=6, history=hist, progress=lambda f, p: calls.append((f, p)))
    assert out.shape == x.shape
    assert hist[-1][1] < hist[0][1]
    assert [round(f, 3) for f, _ in calls] == [round((i + 1) / 6, 3) for i in range(6)]
    assert any(isinstance(p, Image.Image) for _, p in calls)
    # cancel after the 2nd step: no more steps run
    ev = threading.Event()
    seen = []

    def prog(f, p):
        seen.append(f)
        if len(seen) == 2:
            ev.set()

    eng.run(x, style.gram, steps=50, progress=prog, cancel=ev)
    assert len(seen) == 2


def test_quality_through_service_with_adam_and_max_pooling(gt, content):
    eng = GatysEngine(GatysConfig(optimizer="adam", pooling="max"))
    hist = []
    eng.run(to_tensor(content.resize((64, 96))), gt.bank.style("drama").gram, steps=4, history=hist)
    assert hist[-1][1] < hist[0][1]
    calls = []
    out = gt.transfer(content, "drama", engine="quality", size=(64, 96), steps=3, progress=lambda f, p: calls.append(f))
    assert out.size == (64, 96) and calls[-1] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------- evaluation + CLI
def test_evaluate_transfer_json(gt, tmp_path):
    for i in range(2):
        _pattern(300 + i).save(tmp_path / f"c{i}.png")

    class FakeClassifier:
        def predict_proba(self, images):
            p = np.zeros((len(images), len(G.GENRES)), np.float32)
            p[:, G.GENRES.index("Drama")] = 1.0
            return p

    res = evaluate_transfer(tmp_path, ["drama", "comedy"], transfer=gt, classifier=FakeClassifier(), size=(64, 96))
    assert res["genres"]["Drama"]["hit_rate"] == 1.0 and res["genres"]["Comedy"]["hit_rate"] == 0.0
    assert res["average"]["hit_rate"] == 0.5
    assert 0 < res["genres"]["Drama"]["ssim"] <= 1 and res["genres"]["Drama"]["seconds_per_image"] > 0


def test_cli_writes_output_and_fails_cleanly(checkpoint, content, tmp_path, capsys):
    from poster_studio.cli import main

    src = tmp_path / "in.png"
    content.save(src)
    out = tmp_path / "out.png"
    assert main(["transfer", "--content", str(src), "--genre", "romance", "--size", "64x96", "--out", str(out),
                 "--checkpoint", str(checkpoint)]) == 0
    assert Image.open(out).size == (64, 96)
    capsys.readouterr()
    for bad in (["--strength", "2"], ["--genre", "western"], ["--size", "5x5"]):
        args = ["transfer", "--content", str(src), "--genre", "romance", "--out", str(tmp_path / "x.png"),
                "--checkpoint", str(checkpoint)] + bad
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err
    (tmp_path / "notimage.png").write_text("<html>")
    assert main(["transfer", "--content", str(tmp_path / "notimage.png"), "--genre", "drama", "--out",
                 str(tmp_path / "y.png"), "--checkpoint", str(checkpoint)]) == 2
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


# ------------------------------------------------------------------------------------------- training
def test_training_resumes_after_interruption(tmp_path):
    import train_transfer as tt

    data = tmp_path / "posters"
    (data / "images").mkdir(parents=True)
    with open(data / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "year", "genres", "split"])
        for i in range(12):
            w.writerow([f"t{i}", f"T{i}", "2000", G.GENRES[i % 7], "train"])
            _pattern(i, 46, 68).save(data / "images" / f"t{i}.jpg")
    photos = tmp_path / "content"
    photos.mkdir()
    _pattern(50, 90, 70).save(photos / "photo.png")

    def args(run, iters):
        return tt.parse_args(["--data", str(data), "--content-dir", str(photos), "--out", str(tmp_path / run / "ck"),
                              "--run-dir", str(tmp_path / run / "run"), "--cache", str(tmp_path / "cache"),
                              "--width", "4", "--crop", "32", "--batch", "2", "--iters", str(iters),
                              "--n-content", "6", "--photo-crops", "2", "--n-style", "5", "--save-every", "1",
                              "--sample-every", "100", "--checkpoint-every", "100"])

    tt.train(args("straight", 4))
    tt.train(args("interrupted", 2))  # "killed" after step 2 (state saved every step)
    tt.train(args("interrupted", 4))  # same command again: resumes at step 2
    from poster_studio.training import load_state
    a = load_state(tmp_path / "straight" / "run" / "state.safetensors")
    b = load_state(tmp_path / "interrupted" / "run" / "state.safetensors")
    assert b["step"] == 4 and len(b["history"]) == 4
    for k in a["decoder"]:
        assert torch.allclose(a["decoder"][k], b["decoder"][k], atol=1e-6), k
    loaded = hub.load_model(AdaINDecoder, "transfer", directory=tmp_path / "interrupted" / "ck")
    assert loaded.width == 4
    assert (tmp_path / "interrupted" / "run" / "loss.png").exists()


def test_color_match_gives_exemplar_palette(gt, content):
    from poster_studio.transfer import match_colors

    x = to_tensor(content)
    mean, cov = torch.tensor([0.2, 0.1, 0.05]), torch.diag(torch.tensor([0.01, 0.004, 0.002]))
    y = match_colors(x, mean, cov)
    p = y[0].flatten(1)
    assert torch.allclose(p.mean(1), mean, atol=0.02)
    assert torch.allclose(torch.cov(p, correction=0), cov, atol=3e-3)
    style = gt.bank.style("horror")
    assert style.pixel_mean.shape == (3,) and style.pixel_cov.shape == (3, 3)
    a = to_tensor(gt.transfer(content, "horror", size=(64, 96), color_match=True))
    assert a[0].flatten(1).mean(1).sub(style.pixel_mean).abs().max() < 0.08


def test_validated_exemplars_judge_candidates_then_grow_the_blend_while_it_helps(tmp_path):
    """--method validated: each candidate restyles the tuning content and the classifier scores the results; the
    blend starts from the best candidate and takes the next ones only while the blend's score does not drop.
    Stub engine/classifier: a result 'is' its style's mean redness; the genre likes redness near 0.6."""
    from build_exemplars import validated_exemplars

    n, gi = 6, G.GENRES.index("Horror_Thriller")
    reds = [0.1, 0.9, 0.3, 0.8, 0.5, 0.2]
    for i, r in enumerate(reds):
        Image.new("RGB", (20, 30), (int(r * 255), 40, 40)).save(tmp_path / f"p{i}.jpg")
    probs = torch.full((n, len(G.GENRES)), 0.1)
    probs[:, gi] = torch.linspace(0.9, 0.6, n)  # every poster confident; the pool of 5 leaves p5 out
    index = SimpleNamespace(ids=[f"p{i}" for i in range(n)], probs=probs)

    class Engine:
        def style_from_images(self, images, grams=True):
            return float(np.mean([np.asarray(im, dtype=np.float32)[..., 0].mean() / 255.0 for im in images]))

        def transfer(self, content, style, size):
            return style

    class Clf:
        def predict_proba(self, outs):
            p = np.full((len(outs), len(G.GENRES)), 0.6)
            p[:, gi] = [1.0 - abs(o - 0.6) for o in outs]
            return p

    rows, weights, report = validated_exemplars(index, tmp_path, "Horror_Thriller", k=2, pool=5,
                                                tune_content=[None, None], transfer=Engine(), classifier=Clf())
    # Alone: p4 (0.5) scores best, then p3 (0.8). Blend p4+p3 (0.65) beats p4 alone; adding any third lowers it.
    assert rows == [4, 3]
    assert weights == pytest.approx([0.5, 0.5])
    assert [r["id"] for r in report][:2] == ["p4", "p3"] and report[-1]["id"] == "p0"
    assert {r["id"] for r in report} == {"p0", "p1", "p2", "p3", "p4"}
    assert [r["kept"] for r in report] == [True, True, False, False, False]
    assert report[0]["tune_hit_rate"] == 1.0 and report[-1]["tune_hit_rate"] == 0.0
