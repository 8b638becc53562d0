"""Genre transfer: exemplar selection, both engines, the service (arguments, style images, fitting, notes, one
quality job at a time), checkpoints, evaluation, CLI, and the training scripts' resumable run and exemplar validation.

Everything runs on tiny synthetic data (no poster folder, no network): a width-4 decoder and exemplar
statistics computed here from generated images stand in for the real checkpoint.
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

from poster_studio import genres as G
from poster_studio import hub
from poster_studio.backbones import shared_vgg19
from poster_studio.errors import BusyError, CheckpointError, InvalidArgumentError, InvalidImageError
from poster_studio.images import fit_image, image_notes, load_image, to_tensor
from poster_studio.transfer import (AdaINDecoder, ExemplarBank, GatysConfig, GatysEngine, GenreTransfer, genre_scores,
                                    select_exemplars)
from poster_studio.transfer.evaluate import blotch_share, evaluate_transfer, ssim
from poster_studio.transfer.style import (ENCODER_LAYER, GenreStyle, blend_colors, blend_statistics, box_filter,
                                          guided_filter, match_colors, rgb_to_yiq, style_statistics)

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "train")

torch.set_num_threads(1)


def _pattern(seed: int, w: int = 48, h: int = 72) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 255, 3)
    freq = rng.uniform(0.1, 0.6, 2)
    a = np.stack([base[c] * 0.5 + 100 * np.sin(xx * freq[0] + c) * np.cos(yy * freq[1]) for c in range(3)], -1)
    a += rng.normal(0, 20, a.shape)
    return Image.fromarray(np.clip(a + 60, 0, 255).astype(np.uint8))


def _tinted(channel: int, seed: int = 0, w: int = 48, h: int = 72) -> Image.Image:
    """A textured picture in one colour: `channel` 150..255, the other two 0..40."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 40, (h, w, 3))
    a[..., channel] = rng.uniform(150, 255, (h, w))
    return Image.fromarray(a.astype(np.uint8))


def _red_minus_blue(img: Image.Image) -> float:
    a = np.asarray(img, dtype=np.float32)
    return float(a[..., 0].mean() - a[..., 2].mean())


def _fake_index(n: int = 14, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(n, 128, generator=g), dim=1)
    probs = torch.rand(n, len(G.GENRES), generator=g) * 0.5
    return SimpleNamespace(ids=[f"p{i:03d}" for i in range(n)], titles=[f"Poster {i}" for i in range(n)],
                           years=[str(1990 + i) for i in range(n)], embeddings=emb, probs=probs)


def _bank(index, images: Path, k: int = 2) -> ExemplarBank:
    """Each genre's exemplar statistics, as train/build_exemplars.py makes them (seed selection)."""
    styles = {}
    for g in G.GENRES:
        rows, weights = select_exemplars(index.embeddings, index.probs, g, method="seed", k=k)
        stats = style_statistics([load_image(images / f"{index.ids[r]}.jpg") for r in rows], shared_vgg19(),
                                 area=48 * 72)
        mean, std, gram = blend_statistics(stats, weights)
        pm, pc = blend_colors(stats, weights)
        ex = [{"id": index.ids[r], "title": index.titles[r], "year": index.years[r], "weight": w}
              for r, w in zip(rows, weights)]
        styles[g] = GenreStyle(g, ex, mean, std, gram, stats["mean"][ENCODER_LAYER], stats["std"][ENCODER_LAYER],
                               pm, pc)
    return ExemplarBank(styles, {"method": "seed"})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A complete transfer checkpoint folder: tiny decoder + exemplar statistics from synthetic posters."""
    root = tmp_path_factory.mktemp("ckpt")
    images = root / "images"
    images.mkdir()
    index = _fake_index()
    for i, pid in enumerate(index.ids):
        _pattern(i).save(images / f"{pid}.jpg")
    folder = root / "checkpoints" / "transfer"
    torch.manual_seed(0)
    hub.save_checkpoint(AdaINDecoder(width=4), folder, description="test", extra_files=_bank(index, images).files())
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


def test_genre_scores():
    probs = torch.tensor([[0.9, 0.1, 0.8, 0, 0, 0, 0], [0.2, 0.1, 0.5, 0, 0, 0, 0]])
    assert genre_scores(probs, "Comedy").tolist() == pytest.approx([0.8, 0.5])
    assert genre_scores(probs, "comedy", "margin").tolist() == pytest.approx([-0.1, 0.3])
    with pytest.raises(InvalidArgumentError, match="Unknown exemplar score"):
        genre_scores(probs, "Comedy", "nope")


def test_margin_score_prefers_unambiguous_posters():
    idx = _fake_index(10)
    gi = G.GENRES.index("Comedy")
    idx.probs[2, gi], idx.probs[2, 0] = 0.95, 0.94  # confident but ambiguous
    idx.probs[5, gi] = 0.9
    assert select_exemplars(idx.embeddings, idx.probs, "comedy", method="topk", k=0)[0] == [2]
    assert select_exemplars(idx.embeddings, idx.probs, "comedy", method="topk", k=0, score="margin")[0] == [5]


def test_posters_of_the_genre_alone_come_first_where_there_are_enough():
    from poster_studio.transfer.exemplars import single_label_first

    idx = _fake_index(12)
    gi = G.GENRES.index("Romance")
    idx.probs[:, gi] = torch.linspace(0.99, 0.5, 12)  # p000 the surest ... p011 the least
    labels = {i: ("Comedy", "Romance") for i in idx.ids}
    for i in ("p004", "p007", "p009"):
        labels[i] = ("Romance",)
    top, _ = select_exemplars(idx.embeddings, idx.probs, "romance", method="topk", k=1)
    assert top == [0, 1]  # no labels given: the surest posters, comedies among them
    top, _ = select_exemplars(idx.embeddings, idx.probs, "romance", method="topk", k=1, ids=idx.ids, labels=labels)
    assert top == [4, 7]  # Romance alone, the surest of those
    top, _ = select_exemplars(idx.embeddings, idx.probs, "romance", method="topk", k=3, ids=idx.ids, labels=labels)
    assert top == [0, 1, 2, 3]  # 4 wanted, 3 single-label posters: not enough, no preference
    s = single_label_first(idx.probs[:, gi], idx.ids, labels, "Romance", 3)
    assert torch.argsort(s, descending=True)[:4].tolist() == [4, 7, 9, 0]  # then the others, in their order
    assert torch.equal(single_label_first(idx.probs[:, gi], idx.ids, None, "Romance", 1), idx.probs[:, gi])


def test_exemplar_bank_records_each_posters_genres_and_prefers_the_genre_alone_only_when_asked(tmp_path):
    build_bank = _train_module("build_exemplars").build_bank

    idx = _fake_index(6)
    gi = G.GENRES.index("Romance")
    idx.probs[:, gi] = torch.linspace(0.99, 0.5, 6)
    for i in idx.ids:
        _pattern(int(i[1:])).save(tmp_path / f"{i}.jpg")
    labels = {i: ("Comedy", "Romance") for i in idx.ids} | {"p003": ("Romance",)}
    kw = dict(method="topk", k=0, genres=["Romance"], style_size=(32, 48), labels=labels)
    plain = build_bank(idx, tmp_path, **kw).style("Romance").exemplars
    assert [(e["id"], e["genres"]) for e in plain] == [("p000", ["Comedy", "Romance"])]  # the surest; its genres
    bank = build_bank(idx, tmp_path, prefer_single_label=True, **kw)
    assert [(e["id"], e["genres"]) for e in bank.style("Romance").exemplars] == [("p003", ["Romance"])]
    assert bank.info["prefer_single_label"] is True


# ------------------------------------------------------------------------------------------- service
def test_exemplars_and_checkpoint_round_trip_via_hub(checkpoint, monkeypatch):
    monkeypatch.setenv(hub.CHECKPOINTS_ENV, str(checkpoint.parent))
    monkeypatch.delenv(hub.HUB_REPO_ENV, raising=False)
    loaded = GenreTransfer.load()
    assert loaded.decoder.width == 4
    ex = loaded.exemplars("Drama")
    assert len(ex) == 3 and set(ex[0]) == {"id", "title", "year", "genres"}
    assert ex[0]["genres"] == []  # made-up posters: no labels known
    ref = hub.load_model(AdaINDecoder, "transfer")
    for a, b in zip(ref.state_dict().values(), loaded.decoder.state_dict().values()):
        assert torch.equal(a, b)
    bank = ExemplarBank.load(checkpoint)
    assert bank.style("drama").gram["relu5_1"].shape == (512, 512) and bank.info == {"method": "seed"}
    assert [e["id"] for e in bank.style("Drama").exemplars] == [e["id"] for e in ex]


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
    ref = np.asarray(fit_image(content, (96, 144)), dtype=np.float32)
    assert np.abs(np.asarray(same, dtype=np.float32) - ref).mean() < 1.0
    assert ssim(fit_image(content, (96, 144)), same) > 0.99
    assert np.abs(np.asarray(out, dtype=np.float32) - ref).mean() > 5.0  # full strength does restyle


def test_preserve_color_keeps_content_chroma(gt, content):
    ref = to_tensor(fit_image(content, (96, 144)))[None]
    plain = to_tensor(gt.transfer(content, "horror", size=(96, 144)))[None]
    kept = to_tensor(gt.transfer(content, "horror", size=(96, 144), preserve_color=True))[None]

    def chroma(x):
        return rgb_to_yiq(x)[0, 1:].flatten(1)

    d_kept = (chroma(kept) - chroma(ref)).abs().mean()
    d_plain = (chroma(plain) - chroma(ref)).abs().mean()
    assert d_kept < 0.03 and d_kept < d_plain


def test_user_style_images_replace_genre_fast(gt, content):
    """The user's style images drive the result: a red style gives a redder picture than a blue one, whatever
    genre is also chosen, and the genre's own exemplars give something else again."""
    red, blue = [_tinted(0, 1), _tinted(0, 2)], [_tinted(2, 3), _tinted(2, 4)]
    by_red = gt.transfer(content, None, style_images=red, size=(64, 96))
    by_blue = gt.transfer(content, None, style_images=blue, size=(64, 96))
    assert by_red.size == by_blue.size == (64, 96)
    assert _red_minus_blue(by_red) > 60 and _red_minus_blue(by_blue) < -60, (_red_minus_blue(by_red),
                                                                            _red_minus_blue(by_blue))
    # with a genre chosen too, the style images still win
    assert np.array_equal(np.asarray(gt.transfer(content, "Drama", style_images=red, size=(64, 96))),
                          np.asarray(by_red))
    genre = gt.transfer(content, "Drama", size=(64, 96))
    assert np.abs(np.asarray(genre, dtype=np.float32) - np.asarray(by_red, dtype=np.float32)).mean() > 10
    # half strength: halfway in colour
    half = _red_minus_blue(gt.transfer(content, None, style_images=red, size=(64, 96), strength=0.5))
    plain = _red_minus_blue(fit_image(content, (64, 96)))
    assert plain < half < _red_minus_blue(by_red)


def test_user_style_images_replace_genre_quality(gt, content):
    red, blue = [_tinted(0, 1)], [_tinted(2, 3)]
    kw = dict(engine="quality", size=(64, 96), steps=12)
    by_red = gt.transfer(content, None, style_images=red, **kw)
    by_blue = gt.transfer(content, None, style_images=blue, **kw)
    assert by_red.size == by_blue.size == (64, 96)
    plain = _red_minus_blue(fit_image(content, (64, 96)))
    r, b = _red_minus_blue(by_red), _red_minus_blue(by_blue)
    assert r > plain + 20 and b < plain - 20, (plain, r, b)


def test_style_from_images_matches_their_colours(gt):
    st = gt.style_from_images([_tinted(0, 1), _tinted(2, 3)], grams=False)
    assert st.genre == "custom" and [e["weight"] for e in st.exemplars] == [0.5, 0.5] and st.gram == {}
    # the blend of a red and a blue picture: red and blue means alike, little green
    assert abs(float(st.pixel_mean[0] - st.pixel_mean[2])) < 0.05 and float(st.pixel_mean[1]) < 0.1
    assert float(st.pixel_mean[0]) > 0.3


@pytest.mark.parametrize("kwargs", [
    {"strength": float("nan")}, {"strength": -0.1}, {"strength": 1.5}, {"size": (10, 96)}, {"size": (64, 5000)},
    {"size": "abc"}, {"steps": 0}, {"steps": 5000}, {"steps": float("nan")}, {"engine": "turbo"},
    {"genre": None}, {"genre": "westerns"},
])
def test_bad_arguments_raise_invalid_argument(gt, content, kwargs):
    kw = {"genre": "drama", **kwargs}
    if "steps" in kwargs:
        kw["engine"] = "quality"  # steps are checked for the quality engine only
    with pytest.raises(InvalidArgumentError) as info:
        gt.transfer(content, **kw)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 5000, "engine": "quality"}, f"Steps must be a whole number from 1 to {GenreTransfer.MAX_STEPS}, got 5000."),
    ({"genre": "Western"}, "Unknown genre 'Western'. Choose from: "),
    ({"genre": None}, "Choose a genre (or upload your own style images)."),
    ({"content": None}, "No picture: upload one (or pick an example) first."),
    ({"engine": "turbo"}, "Engine must be one of fast, quality, translate, bridge, got 'turbo'."),
    ({"fit": "stretch"}, "Fit must be one of crop, fit, got 'stretch'."),
    ({"size": "1025x100"}, f"Size width must be a whole number from {GenreTransfer.MIN_SIDE} to {GenreTransfer.MAX_SIDE}"),
    ({"engine": "quality", "steps": 500, "size": "1024x1024"}, "A quality transfer of 500 steps at 1024x1024 is too "
                                                               "costly for this server: at 1024x1024 use at most 187"),
    ({"style_images": [Image.new("RGB", (20, 20))] * (GenreTransfer.MAX_STYLE_IMAGES + 1)}, "At most 16 style images"),
])
def test_check_inputs_messages(gt, content, kwargs, message):
    kw = {"content": content, "genre": "drama", **kwargs}
    with pytest.raises(InvalidArgumentError) as info:
        gt.check_inputs(**kw)
    assert str(info.value).startswith(message), str(info.value)
    with pytest.raises(InvalidArgumentError) as again:  # transfer() says the same
        gt.transfer(kw.pop("content"), **kw)
    assert str(again.value) == str(info.value)


def test_check_inputs_normalises(gt, content):
    a = gt.check_inputs(content=content, genre="Horror & Thriller", engine=" Quality ", size="256X384", steps=20.0,
                        fit="FIT", strength=0)
    assert (a["genre"], a["engine"], a["size"], a["steps"], a["fit"], a["strength"]) == \
        ("Horror_Thriller", "quality", (256, 384), 20, "fit", 0.0)
    assert gt.check_inputs(content=content, genre="horror", engine="quality")["steps"] == 100  # the default
    assert gt.check_inputs(content=content, genre="horror", steps=99999)["steps"] is None  # fast: steps unused
    assert gt.check_inputs(content=content, genre=None, style_images=[Image.new("RGB", (20, 20))])["genre"] is None
    with pytest.raises(InvalidImageError, match="1x1"):
        gt.check_inputs(content=content, genre=None, style_images=[Image.new("RGB", (1, 1))])


def test_crop_and_fit_differ_and_notes_say_which(gt):
    """A square picture is not 2:3: "crop" keeps its centre, "fit" all of it on a blurred backdrop."""
    a = np.full((90, 90, 3), 128, np.uint8)
    a[:, :12] = (0, 255, 0)  # a green left edge, outside the centre 2:3 part
    square = Image.fromarray(a)
    crop = gt.transfer(square, "Comedy", size=(64, 96), fit="crop")
    fit = gt.transfer(square, "Comedy", size=(64, 96), fit="fit")
    assert crop.size == fit.size == (64, 96)
    assert np.abs(np.asarray(crop, dtype=np.float32) - np.asarray(fit, dtype=np.float32)).mean() > 3
    (note_crop,), (note_fit,) = image_notes(crop), image_notes(fit)
    assert "Your 90x90 picture was centre-cropped to the 2:3 poster shape (64x96)." == note_crop
    assert "fitted whole (blurred backdrop)" in note_fit and "centre-cropped" not in note_fit
    # strength 0 shows the fitting itself: green only where the whole picture is fitted
    green = lambda im: float((np.asarray(im, dtype=np.int16)[..., 1] - np.asarray(im, dtype=np.int16)[..., 0]).max())  # noqa: E731
    assert green(gt.transfer(square, "Comedy", size=(64, 96), fit="fit", strength=0)) > 100
    assert green(gt.transfer(square, "Comedy", size=(64, 96), fit="crop", strength=0)) < 20
    poster = _pattern(5, 64, 96)  # already 2:3: nothing to say
    assert image_notes(gt.transfer(poster, "Comedy", size=(64, 96))) == []


def test_animated_content_note(gt, tmp_path):
    frames = [Image.new("RGB", (64, 96), c) for c in ((200, 0, 0), (0, 200, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = gt.transfer(tmp_path / "anim.gif", "Drama", size=(64, 96))
    assert image_notes(out) == ["anim.gif is animated (2 frames): its first frame was used."]
    assert image_notes(gt.transfer(tmp_path / "anim.gif", "Drama", size=(64, 96), strength=0)) == image_notes(out)


# ------------------------------------------------------------------------------------------- quality engine
def test_quality_engine_lowers_loss_progress_and_cancel(gt, content):
    x = to_tensor(content.resize((64, 96)))[None]
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
    # a picture tensor with channels-last strides (as PIL -> numpy -> permute gives) optimises as well
    hwc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not hwc.is_contiguous()
    assert torch.allclose(eng.run(hwc, style.gram, steps=2), eng.run(x, style.gram, steps=2), atol=1e-4)


def test_quality_engine_takes_one_job_while_fast_ones_go_on(gt, content):
    started, release, results = threading.Event(), threading.Event(), []

    def hold(fraction, preview):  # the first job keeps the quality slot until released
        started.set()
        assert release.wait(30)

    job = threading.Thread(target=lambda: results.append(
        gt.transfer(content, "drama", engine="quality", size=(64, 96), steps=2, progress=hold)))
    job.start()
    try:
        assert started.wait(60)
        second = []

        def another_quality_job():
            try:
                second.append(gt.transfer(content, "comedy", engine="quality", size=(64, 96), steps=2))
            except BusyError as exc:
                second.append(exc)

        t = threading.Thread(target=another_quality_job, daemon=True)
        t.start()
        t.join(10)
        assert second, "the second quality job waited instead of being refused at once"
        assert isinstance(second[0], BusyError) and "quality engine is busy" in str(second[0])
        assert "fast engine" in str(second[0])
        fast = gt.transfer(content, "comedy", size=(64, 96))  # at the same time, no wait
        assert fast.size == (64, 96) and job.is_alive()
    finally:
        release.set()
        job.join(60)
    assert results and results[0].size == (64, 96)
    assert gt.transfer(content, "comedy", engine="quality", size=(64, 96), steps=1).size == (64, 96)  # free again


def test_quality_job_cancelled_returns_the_picture_so_far(gt, content):
    ev = threading.Event()
    seen = []

    def prog(fraction, preview):
        seen.append(fraction)
        ev.set()

    out = gt.transfer(content, "drama", engine="quality", size=(64, 96), steps=50, progress=prog, cancel=ev)
    assert out.size == (64, 96) and len(seen) == 1
    assert image_notes(out)[-1] == "Cancelled: this is the picture so far."
    assert gt.transfer(content, "drama", engine="quality", size=(64, 96), steps=1).size == (64, 96)  # slot freed


def test_quality_through_service_with_adam_and_max_pooling(gt, content):
    eng = GatysEngine(GatysConfig(optimizer="adam", pooling="max"))
    hist = []
    eng.run(to_tensor(content.resize((64, 96)))[None], gt.bank.style("drama").gram, steps=4, history=hist)
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

    class FakeProbe:  # the second judge disagrees: it sees Comedy everywhere
        def predict_proba(self, images):
            p = np.zeros((len(images), len(G.GENRES)), np.float32)
            p[:, G.GENRES.index("Comedy")] = 1.0
            return p

    res = evaluate_transfer(tmp_path, ["drama", "comedy"], transfer=gt, classifier=FakeClassifier(), size=(64, 96),
                            probe=FakeProbe())
    assert res["genres"]["Drama"]["hit_rate"] == 1.0 and res["genres"]["Comedy"]["hit_rate"] == 0.0
    assert res["genres"]["Drama"]["hit_rate_probe"] == 0.0 and res["genres"]["Comedy"]["hit_rate_probe"] == 1.0
    assert res["average"]["hit_rate_probe"] == 0.5
    assert res["average"]["hit_rate"] == 0.5 and res["images"] == 2 and res["size"] == "64x96"
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
def _train_module(name: str):
    if TRAIN not in sys.path:
        sys.path.insert(0, TRAIN)
    import importlib

    return importlib.import_module(name)


def test_training_resumes_after_interruption(tmp_path):
    tt = _train_module("train_transfer")

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
    x = to_tensor(content)[None]
    mean, cov = torch.tensor([0.2, 0.1, 0.05]), torch.diag(torch.tensor([0.01, 0.004, 0.002]))
    y = match_colors(x, mean, cov)
    p = y[0].flatten(1)
    assert torch.allclose(p.mean(1), mean, atol=0.02)
    assert torch.allclose(torch.cov(p, correction=0), cov, atol=3e-3)
    style = gt.bank.style("horror")
    assert style.pixel_mean.shape == (3,) and style.pixel_cov.shape == (3, 3)
    a = to_tensor(gt.transfer(content, "horror", size=(64, 96), color_match=True))
    assert a.flatten(1).mean(1).sub(style.pixel_mean).abs().max() < 0.08


def test_validated_exemplars_judge_candidates_then_grow_the_blend_while_it_helps(tmp_path):
    """--method validated: each candidate restyles the tuning content and the classifier scores the results; the
    blend starts from the best candidate and takes the next ones only while the blend's score does not drop.
    Stub engine/classifier: a result 'is' its style's mean redness; the genre likes redness near 0.6."""
    validated_exemplars = _train_module("build_exemplars").validated_exemplars

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

    # With the VGG-19 probe as a second judge (here it likes redness near 0.3, twice as sharply), the mean of both
    # margins ranks p2 (0.3) first, and every blend with it scores lower: one exemplar, which both judges accept.
    class Probe:
        def predict_proba(self, outs):
            p = np.full((len(outs), len(G.GENRES)), 0.6)
            p[:, gi] = [1.0 - 2 * abs(o - 0.3) for o in outs]
            return p

    rows, weights, report = validated_exemplars(index, tmp_path, "Horror_Thriller", k=2, pool=5,
                                                tune_content=[None, None], transfer=Engine(), classifier=Clf(),
                                                probe=Probe())
    assert rows == [2] and weights == [1.0]
    assert [r["id"] for r in report] == ["p2", "p4", "p0", "p3", "p1"]
    assert report[0]["tune_hit_rate"] == 1.0 and report[3]["tune_hit_rate"] == 0.0  # p3: the classifier's yes, probe's no

    # With the posters' labels, the candidates are the posters of the genre alone (here 5 of 6: the pool's size),
    # so p3 (also a Comedy) gives its place to p5, which the pool of the 5 surest left out before.
    labels = {f"p{i}": ("Horror_Thriller",) for i in range(n)} | {"p3": ("Comedy", "Horror_Thriller")}
    rows, weights, report = validated_exemplars(index, tmp_path, "Horror_Thriller", k=2, pool=5,
                                                tune_content=[None, None], transfer=Engine(), classifier=Clf(),
                                                labels=labels)
    assert {r["id"] for r in report} == {"p0", "p1", "p2", "p4", "p5"}
    assert rows[0] == 4 and 3 not in rows


def test_blotch_share_counts_dark_spots_on_bright_smooth_regions_not_a_grade_even_a_dark_one():
    """A bright, smooth picture (a sky) with a textured strip: dark blotches on the sky count; an even colour grade
    does not, even one that makes the sky nearly black (a Horror palette); the texture strip never does (not smooth,
    nor a reference); a dark input has nothing to count."""
    rng = np.random.default_rng(0)
    sky = np.full((96, 64, 3), 210, np.uint8)
    sky[:, :16] = rng.integers(0, 255, (96, 16, 3))  # texture: not a smooth region
    content = Image.fromarray(sky)
    assert blotch_share(content, content) == 0.0
    for gain in ([0.8, 0.7, 0.9], [0.15, 0.05, 0.05]):  # even grades, darker and tinted; the second near black
        graded = Image.fromarray((sky.astype(np.float32) * gain).astype(np.uint8))
        assert blotch_share(content, graded) < 0.02, gain
    spots = sky.copy()
    for y, x in ((20, 30), (60, 45), (75, 25)):
        spots[y - 6:y + 6, x - 6:x + 6] = 40
    share = blotch_share(content, Image.fromarray(spots))
    assert 0.05 < share < 0.25, share  # 3 spots of 12x12 on ~48x96 smooth pixels (the blur trims their rims)
    dark_spots = Image.fromarray((spots.astype(np.float32) * 0.2).astype(np.uint8))  # blotches under a dark grade
    assert blotch_share(content, dark_spots) == pytest.approx(share, abs=0.03)
    noisy = spots.copy()
    noisy[:, :16] = 0  # wiping the texture strip changes nothing: it is not a bright smooth region
    assert blotch_share(content, Image.fromarray(noisy)) == pytest.approx(share, abs=0.01)
    assert blotch_share(Image.fromarray(np.full((96, 64, 3), 30, np.uint8)), Image.fromarray(spots)) == 0.0


def test_box_filter_is_the_window_mean_cut_at_the_border():
    x = torch.rand(1, 2, 9, 7, generator=torch.Generator().manual_seed(0))
    out = box_filter(x, 2)
    assert out.shape == x.shape
    assert out[0, 1, 4, 3] == pytest.approx(float(x[0, 1, 2:7, 1:6].mean()), abs=1e-6)
    assert out[0, 0, 0, 0] == pytest.approx(float(x[0, 0, :3, :3].mean()), abs=1e-6)  # corner: a 3x3 window


def test_guided_filter_fades_spots_the_guide_lacks_and_keeps_its_edges():
    """On a flat bright guide (a sky), dark spots in the filtered image fade to a faint tint (blotch_share ~0); where
    the guide has an edge and the image follows it, the edge stays sharp."""
    guide = torch.full((1, 3, 96, 64), 0.82)
    guide[..., 48:, :] = 0.2  # an edge: bright sky above, dark ground below
    spots = guide.clone()
    for y, x in ((20, 30), (30, 45)):
        spots[..., y - 4:y + 4, x - 4:x + 4] = 0.15  # the decoder's blotches, on the sky only
    out = guided_filter(guide, spots, 8)
    to_img = lambda t: Image.fromarray((t[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))  # noqa: E731
    before, after = blotch_share(to_img(guide), to_img(spots)), blotch_share(to_img(guide), to_img(out))
    assert before > 0.03 and after < 0.005, (before, after)  # 2 spots of 8x8 on ~64x40 smooth sky pixels
    assert float(out[..., 20, 30].mean()) > 0.65  # the spot (0.15) is mostly back to the sky's 0.82
    edge = guided_filter(guide, guide, 8)
    assert float((edge - guide).abs().max()) < 0.05  # an image that follows its guide is left as it is
    assert float(edge[..., 46, :].mean()) > 0.75 and float(edge[..., 50, :].mean()) < 0.25


def test_fast_engine_cleans_up_with_the_guided_filter_unless_asked_not_to(gt, content):
    """clean (the default) and clean=False give different pictures, and the difference is the guided filter; the
    other engines ignore it; a value that is not a yes/no is refused."""
    on = np.asarray(gt.transfer(content, "horror", size=(96, 144)), dtype=np.float32)
    off = gt.transfer(content, "horror", size=(96, 144), clean=False)
    assert GenreTransfer.FAST_SMOOTH > 0 and np.abs(on - np.asarray(off, dtype=np.float32)).mean() > 1.0
    x = to_tensor(fit_image(content, (96, 144)))[None]
    r = round(GenreTransfer.FAST_SMOOTH * 96)
    again = guided_filter(x, to_tensor(off)[None], r, GenreTransfer.FAST_SMOOTH_EPS).clamp(0, 1)
    assert np.abs(on - again[0].permute(1, 2, 0).numpy() * 255).mean() < 1.5  # the same up to 8-bit rounding
    assert gt.check_inputs(content=content, genre="horror", clean="no")["clean"] is False
    with pytest.raises(InvalidArgumentError, match="Clean must be true or false"):
        gt.transfer(content, "horror", size=(96, 144), clean="maybe")
