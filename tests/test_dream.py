"""Dream: the feature-visualisation parts on their own, the Dreamer service on the shipped classifier (small sizes,
few steps), its messages for bad input, cancellation, the CLI, principal masks and the tab's handler."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, checkpoint_missing, make_bad_files
from poster_studio.classify.masks import apply_mask, principal_components
from poster_studio.dream.deepdream import deep_dream, pyramid_sizes
from poster_studio.dream.render import FourierImage, logit, octave_sizes, optimise, random_view
from poster_studio.errors import InvalidArgumentError, InvalidImageError
from poster_studio.images import image_notes

needs_classifier = pytest.mark.skipif(bool(checkpoint_missing("classifier")), reason="no classifier checkpoint")


def _picture(w: int = 150, h: int = 100, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([127 + 100 * np.sin(x / 9 + c) * np.cos(y / 13) for c in range(3)], -1) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------------------ recipe parts
def test_fourier_image_range_shape_seed_and_base():
    with torch.no_grad():
        a = FourierImage(60, 40, generator=torch.Generator().manual_seed(1))()
        b = FourierImage(60, 40, generator=torch.Generator().manual_seed(1))()
        c = FourierImage(60, 40, generator=torch.Generator().manual_seed(2))()
    assert a.shape == (1, 3, 60, 40) and 0 < float(a.min()) and float(a.max()) < 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    base = torch.rand(1, 3, 60, 40) * 0.8 + 0.1
    with torch.no_grad():
        img = FourierImage(60, 40, base=logit(base), sd=0.0)()
    assert torch.allclose(img, base, atol=1e-5)  # a zero spectrum leaves the starting picture as it is


def test_fourier_steps_are_smooth_not_pixel_noise():
    """One gradient step towards a pixel target moves the 1/f picture mostly at low frequencies."""
    img = FourierImage(64, 64, sd=0.0)
    target = torch.zeros(1, 3, 64, 64)
    target[..., 20:40, 20:40] = 1.0
    optimise(img, lambda x, _s: (x - target).pow(2).mean(), 5, lr=0.05)
    with torch.no_grad():
        d = img() - 0.5
    spec = torch.fft.rfft2(d).abs().mean((0, 1))
    assert float(spec[:4, :4].mean()) > 10 * float(spec[16:, 16:].mean())


def test_random_view_size_and_gradients():
    x = torch.rand(1, 3, 90, 60, requires_grad=True)
    v = random_view(x, (48, 32), torch.Generator().manual_seed(0))
    assert v.shape == (1, 3, 48, 32)
    v.mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_octave_and_pyramid_sizes_end_at_the_full_size():
    assert octave_sizes(600, 400, 3, factor=2.0) == [(150, 100), (300, 200), (600, 400)]
    assert octave_sizes(150, 100, 3, factor=2.0) == [(150, 100)]  # the coarser ones would be tiny
    sizes = pyramid_sizes(400, 600, 4, 1.4)
    assert sizes[-1] == (400, 600) and sizes == sorted(sizes) and len(sizes) == 4


def test_deep_dream_raises_its_objective_and_cancel_keeps_the_full_size():
    conv = torch.nn.Conv2d(3, 8, 5, padding=2)
    torch.nn.init.normal_(conv.weight, std=0.2)
    act = lambda x: torch.relu(conv(x)).pow(2).mean()  # noqa: E731
    x0 = torch.rand(1, 3, 96, 64) * 0.5 + 0.25
    out, finished = deep_dream(x0, [(act, 1.0)], octaves=2, iterations=5, step=0.02, jitter=4,
                               generator=torch.Generator().manual_seed(0))
    assert finished and out.shape == x0.shape
    with torch.no_grad():
        assert float(act(out)) > 1.2 * float(act(x0))
    stop = threading.Event()
    calls = []

    def progress(done, total, x):
        calls.append(done)
        if done == 3:
            stop.set()

    part, finished = deep_dream(x0, [(act, 1.0)], octaves=3, iterations=5, step=0.02, progress=progress, cancel=stop)
    assert not finished and part.shape == x0.shape and calls[-1] == 3


def test_principal_components_of_masks():
    pattern = torch.zeros(20, 10)
    pattern[5:10, 2:6] = 1.0
    other = torch.zeros(20, 10)
    other[12:18, 5:9] = 1.0
    masks = torch.stack([pattern, pattern * 0.9 + other * 0.1, pattern + other])
    masks = masks / masks.flatten(1).norm(dim=1)[:, None, None]
    comps, energy, loadings = principal_components(masks, 2)
    assert comps.shape == (2, 20, 10) and float(comps.max()) <= 1 and float(comps.min()) >= 0
    assert float(energy[0]) > float(energy[1]) and float(energy.sum()) <= 1 + 1e-6
    assert float(comps[0][5:10, 2:6].mean()) > 0.9 and float(loadings[:, 0].sum()) > 0  # shared part, signed +
    assert float(comps[0][:4].abs().max()) < 1e-6  # nothing where no mask has evidence
    pic = torch.rand(1, 3, 40, 20)
    kept = apply_mask(pic, comps[0])
    assert torch.allclose(kept[..., 12:18, 6:10], pic[..., 12:18, 6:10], atol=0.05)


# ------------------------------------------------------------------------------------------ the service
@pytest.fixture(scope="module")
def dreamer():
    from poster_studio.dream import Dreamer

    return Dreamer.load()


@needs_classifier
def test_genre_dream_is_seen_as_its_genre(dreamer):
    """A short dream from noise: the classifier it was optimised against sees the genre, far more than in the
    starting noise; the same seed gives the same picture."""
    start = dreamer.genre_dream(["Animation"], size="128x192", steps=1, strength=0.0, seed=3)
    img = dreamer.genre_dream(["Animation"], size="128x192", steps=24, seed=3)
    again = dreamer.genre_dream(["animation"], size="128x192", steps=24, seed=3)
    assert img.size == (128, 192) and np.array_equal(np.asarray(img), np.asarray(again))
    p0, p = dreamer.classifier.predict_proba([start, img])[:, dreamer.genres.index("Animation")]
    assert p > 0.9 and p > p0 + 0.3, (p0, p)


@needs_classifier
def test_two_genres_both_raised(dreamer):
    img = dreamer.genre_dream(["Comedy", "Romance"], size="128x192", steps=30, seed=0)
    scores = dreamer.classifier.predict(img)["scores"]
    assert scores["Comedy"] > 0.6 and scores["Romance"] > 0.6, scores


@needs_classifier
def test_genre_dream_from_a_picture_keeps_its_shape_and_says_it_was_cropped(dreamer):
    pic = _picture(150, 100)
    img = dreamer.dream(["Horror"], image=pic, size="picture-120", steps=8)
    assert img.size == (120, 80)  # the picture's own shape at long side 120
    crop = dreamer.dream(["Horror"], image=pic, size="96x144", steps=4)
    assert crop.size == (96, 144) and "centre-cropped" in " ".join(image_notes(crop))
    # strength 0 changes nothing: the result is the (cropped) picture
    same = dreamer.genre_dream(["Horror"], image=pic, size="picture-150", steps=3, strength=0.0)
    assert np.abs(np.asarray(same, np.int16) - np.asarray(pic, np.int16)).mean() < 3
    assert not any("Cancelled" in n for n in image_notes(same))


@needs_classifier
def test_deep_dream_amplifies_the_layer_and_is_steerable(dreamer):
    pic = _picture(96, 64)
    plain = dreamer.deep_dream(pic, layer="relu2_1", size="picture-96", iterations=4, octaves=2)
    assert plain.size == (96, 64)
    loss = dreamer.layer_loss("relu2_1")
    from poster_studio.images import to_tensor

    with torch.no_grad():
        assert float(loss(to_tensor(plain)[None])) > 1.1 * float(loss(to_tensor(pic)[None]))
    g = dreamer.genres.index("Animation")
    steered = dreamer.deep_dream(pic, layer="classifier.block2", genres=["Animation"], size="picture-96",
                                 iterations=6, octaves=2)
    unsteered = dreamer.deep_dream(pic, layer="classifier.block2", size="picture-96", iterations=6, octaves=2)
    p = dreamer.classifier.predict_proba([steered, unsteered])[:, g]
    assert p[0] > p[1], p
    with pytest.raises(InvalidArgumentError, match="Choose a genre to dream of, or a layer"):
        dreamer.dream(None, image=pic)  # a picture alone: dream of what?


@needs_classifier
def test_dream_cancel_returns_the_picture_so_far_with_a_note(dreamer):
    stop = threading.Event()
    previews = []

    def progress(fraction, preview):
        if preview is not None:
            previews.append(preview)
        if fraction >= 0.25:
            stop.set()

    img = dreamer.genre_dream(["Drama"], size="128x192", steps=40, progress=progress, cancel=stop)
    assert img.size == (128, 192)
    assert any(n.startswith("Cancelled after 10 of 40 steps") for n in image_notes(img)), image_notes(img)
    assert previews and previews[-1].size == (128, 192)  # at least the final picture as a preview


@needs_classifier
@pytest.mark.parametrize("kwargs, message", [
    (dict(), "Choose a genre to dream of, or a layer to deep-dream your picture with."),
    (dict(genres=["Western"]), "Unknown genre 'Western'"),
    (dict(genres=["Comedy"], steps=0), "Steps must be a whole number from 1 to 1000, got 0."),
    (dict(genres=["Comedy"], steps=10 ** 9), "Steps must be a whole number from 1 to 1000"),
    (dict(genres=["Comedy"], size="5000x100"), "Size width must be a whole number from 64 to 1024, got '5000'."),
    (dict(genres=["Comedy"], size="picture"), "Size 'picture' follows your picture's shape"),
    (dict(genres=["Comedy"], strength=float("nan")), "Strength must be between 0 and 1"),
    (dict(genres=["Comedy"], seed=-1), "Seed must be a whole number from 0 to 2147483647, got -1."),
    (dict(layer="relu4_2"), "Deep dream with a layer works on a picture"),
    (dict(layer="relu9", image="PIC"), "Layer must be one of relu1_1"),
    (dict(layer="relu4_2", image="PIC", octaves=50), "Octaves must be a whole number from 1 to 8, got 50."),
    (dict(layer="relu4_2", image="PIC", iterations=100, octaves=8, size="picture-1024"),
     "A deep dream of 100 iterations x 8 octaves at 1024x683 is too costly for this server: use at most 12"),
])
def test_bad_arguments_get_one_clear_line(dreamer, kwargs, message):
    if kwargs.get("image") == "PIC":
        kwargs["image"] = _picture()
    genres = kwargs.pop("genres", None)
    with pytest.raises(InvalidArgumentError) as info:
        dreamer.dream(genres, **kwargs)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@needs_classifier
def test_bad_pictures_refused(dreamer, tmp_path):
    for name, path in make_bad_files(tmp_path).items():
        with pytest.raises(InvalidImageError):
            dreamer.dream(["Comedy"], image=str(path), steps=1)


@needs_classifier
def test_principal_masks_of_a_picture(dreamer):
    clf = dreamer.classifier
    masks = clf.principal_masks(_picture(200, 300), count=3, top=4)
    assert len(masks) == 3
    variances = [m["variance"] for m in masks]
    assert variances == sorted(variances, reverse=True) and sum(variances) <= 1.0001
    for m in masks:
        assert set(m["scores"]) == set(clf.genres) and list(m["scores"].values()) == sorted(m["scores"].values(),
                                                                                             reverse=True)
        shown_h = min(clf.MASK_DISPLAY_HEIGHT, max(300, clf.model.image_size[0]))  # the picture's or the network's
        assert len(m["loadings"]) == 4 and m["image"].size[1] == shown_h and m["mask"].mode == "RGB"
    with pytest.raises(InvalidArgumentError, match="Principal masks must be a whole number from 1 to 5"):
        clf.principal_masks(_picture(), count=9)


# ------------------------------------------------------------------------------------------ CLI and tab
# One torch thread in every process that a result is compared across: the float kernels (and so the last bits of
# a dream) depend on the thread count, and in this process earlier tests may have changed it.
SAME_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
LIBRARY_DREAM = ("import sys; from poster_studio.dream import Dreamer; "
                 "Dreamer.load().dream(['Horror'], size='96x144', steps=6, seed=4).save(sys.argv[1])")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **SAME_THREADS))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return _run(["-m", "poster_studio", *args])


@needs_classifier
def test_cli_dream_same_arguments_same_image(tmp_path):
    """The CLI and the library give the same picture, pixel for pixel: both run in a fresh process with the same
    thread count (like with like: an in-process library call would depend on what earlier tests left)."""
    a, b = tmp_path / "cli.png", tmp_path / "library.png"
    proc = _cli("dream", "--genre", "Horror", "--size", "96x144", "--steps", "6", "--seed", "4", "--out", str(a))
    assert proc.returncode == 0, proc.stderr
    lib = _run(["-c", LIBRARY_DREAM, str(b)])
    assert lib.returncode == 0, lib.stderr
    with Image.open(a) as ia, Image.open(b) as ib:
        assert ia.size == ib.size == (96, 144)
        assert np.array_equal(np.asarray(ia.convert("RGB")), np.asarray(ib.convert("RGB")))
    bad = _cli("dream", "--genre", "Horror", "--steps", "0", "--out", str(tmp_path / "c.png"))
    assert (bad.returncode, bad.stderr) == (2, "error: Steps must be a whole number from 1 to 1000, got 0.\n")


class _FakeDreamer:
    """Stand-in service: progress with previews, stops when cancelled, a classifier that predicts."""

    def __init__(self):
        self.started = threading.Event()
        self.classifier = types.SimpleNamespace(predict=lambda img: {"scores": {"Comedy": 0.9, "Drama": 0.2}})

    def dream(self, genres, *, image, layer, size, steps, iterations, octaves, scale, strength, seed, progress,
              cancel):
        for i in range(int(steps)):
            if cancel.is_set():
                out = Image.new("RGB", (40, 60), (0, 0, 255))
                out.info["poster_studio_notes"] = [f"Cancelled after {i} of {steps} steps: this is the dream so far."]
                return out
            progress((i + 1) / steps, Image.new("RGB", (40, 60), (i, 0, 0)) if i % 5 == 0 else None)
            self.started.set()
            threading.Event().wait(0.01)
        return Image.new("RGB", (40, 60), (0, 255, 0))


def test_dream_tab_streams_previews_judges_and_cancels():
    import app
    from ui import common as U

    services = U.Services()
    services.dream.service = fake = _FakeDreamer()
    services.dream._done.set()
    demo = app.build_demo(services)
    fn = next(f.fn for f in demo.fns.values() if f.api_name == "dream")
    outs = list(fn(["Comedy"], None, "none", "auto", 20, 8, 4, 1.4, 1.0, 0))
    assert len(outs) >= 3
    final, label, notes = outs[-1]
    with Image.open(final) as im:
        assert im.convert("RGB").getpixel((0, 0)) == (0, 255, 0)
    assert label == {"Comedy": 0.9, "Drama": 0.2} and notes == ""
    cancel = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "cancel_dream")
    session = types.SimpleNamespace(session_hash="s-1")
    results = []
    fake.started.clear()
    t = threading.Thread(target=lambda: results.extend(fn(["Comedy"], None, "none", "auto", 5000, 8, 4, 1.4, 1.0, 0,
                                                          request=session)))
    t.start()
    assert fake.started.wait(10)
    cancel(session)
    t.join(20)
    assert not t.is_alive()
    assert "Cancelled after" in results[-1][2]
    with Image.open(results[-1][0]) as im:
        assert im.convert("RGB").getpixel((0, 0)) == (0, 0, 255)


def test_dream_tab_without_a_classifier_says_which_model(tmp_path, monkeypatch):
    import gradio as gr

    import app
    from ui import common as U

    monkeypatch.setenv("POSTER_STUDIO_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.delenv("POSTER_STUDIO_HUB_REPO", raising=False)
    demo = app.build_demo(U.Services())
    fn = next(f.fn for f in demo.fns.values() if f.api_name == "dream")
    with pytest.raises(gr.Error, match="dream model is not available: The genre classifier model is not available"):
        list(fn(["Comedy"], None, "none", "auto", 20, 8, 4, 1.4, 1.0, 0))
