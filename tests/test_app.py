"""The app on loopback (`python app.py`, one server per test session) through gradio_client: /generate, /morph,
/classify, /heatmap and /transfer give real outputs; display names and short genre names work; a bad argument or
picture gives the service's one-line message (the same text as the library and the CLI), no traceback in the
server log, and the server keeps serving. The tab handlers over the real services run in-process too.

The glue itself (ServiceSlot, guarded, raw, gpu, run_watched ...) is tested without a server in test_ui.py."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import (BAD_FILE_MESSAGES, CONTENT_DIR, DATA_DIR, ROOT, checkpoint_missing, make_bad_files,
                      make_odd_images, needs_content, needs_posters)
from poster_studio import genres as G
from poster_studio.errors import InvalidArgumentError

STARTUP_LIMIT_S = float(os.environ.get("POSTER_STUDIO_STARTUP_LIMIT", "15"))
UNKNOWN_WESTERN = ("Unknown genre 'Western'. Choose from: Action_Adventure, Animation, Comedy, Documentary, Drama, "
                   "Horror_Thriller, Romance.")


def _needs(name: str) -> None:
    reason = checkpoint_missing(name)
    if reason:
        pytest.skip(reason)


def _fn(demo, api_name: str):
    for block_fn in demo.fns.values():
        if block_fn.api_name == api_name:
            return block_fn.fn
    raise KeyError(api_name)


def _content_photo(synthetic: Path) -> Path:
    return CONTENT_DIR / "chelsea.png" if (CONTENT_DIR / "chelsea.png").is_file() else synthetic


@pytest.fixture(scope="module")
def synthetic_picture(tmp_path_factory) -> Path:
    """300x200 (W x H): not 2:3."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:200, 0:300]
    a = np.stack([127 + 120 * np.sin(x / 17 + c) * np.cos(y / 23) for c in range(3)], -1) + rng.normal(0, 8, (200, 300, 3))
    path = tmp_path_factory.mktemp("pic") / "picture.png"
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"))


def _app_error(client, *args, api_name: str) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    return str(info.value)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "poster_studio", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, HF_HUB_OFFLINE="1"))


# ------------------------------------------------------------------------------------------ the server
def test_server_starts_within_limit(app_server):
    print(f"python app.py served after {app_server.startup_s:.1f} s")
    assert app_server.startup_s < STARTUP_LIMIT_S


def test_api_lists_the_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == {"/generate", "/morph", "/classify", "/heatmap", "/masks", "/transfer", "/dream"}


def _confidences(label: dict) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in label["confidences"]}


@needs_posters
def test_api_classify_real_output(client):
    _needs("classifier")
    from gradio_client import handle_file

    # a training poster: the most similar known poster is itself
    label, heat, summary, similar_md, gallery = client.predict(
        handle_file(str(DATA_DIR / "images" / "train_00001.jpg")), "top", api_name="/classify")
    conf = _confidences(label)
    assert set(conf) == set(G.DISPLAY_NAMES.values())
    assert all(0.0 <= p <= 1.0 and math.isfinite(p) for p in conf.values())
    assert label["label"] == max(conf, key=conf.get)
    with Image.open(heat) as im:
        assert im.size == (182, 268)  # the poster's own size
    assert summary.startswith("**Predicted genres:** ") and f"evidence for {label['label']}" in summary
    lines = similar_md.splitlines()
    assert lines[0] == "**Most similar known posters:**" and len(lines) == 2 + 5, similar_md
    first, dist = lines[2].split(" — distance ")
    assert first == "1. The Last Stand (2013)" and float(dist) <= 0.002  # itself (fp16 index, folded BatchNorm)
    assert all(line.startswith(f"{i}. ") and " — distance " in line for i, line in enumerate(lines[2:], 1))
    # thumbnails of the same posters (a gr.Gallery update: shown when there are any)
    assert gallery["visible"] is True and len(gallery["value"]) == 5
    assert gallery["value"][0]["caption"] == "The Last Stand (2013)"


@needs_content  # a photo with something to find: on the synthetic pattern Grad-CAM can be empty for both genres
def test_api_heatmap_names_the_chosen_genre(client, synthetic_picture):
    _needs("classifier")
    from gradio_client import handle_file

    pic = handle_file(str(_content_photo(synthetic_picture)))
    predicted = client.predict(pic, "top", api_name="/classify")[2].splitlines()[0]
    comedy, summary_c = client.predict(pic, "Comedy", api_name="/heatmap")
    horror, summary_h = client.predict(pic, "Horror & Thriller", api_name="/heatmap")
    assert summary_c.startswith(predicted) and "**Heatmap:** evidence for Comedy" in summary_c
    assert "evidence for Horror & Thriller" in summary_h
    with Image.open(comedy) as a, Image.open(horror) as b:
        assert a.size == b.size and np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean() > 1.0
    assert "not 2:3" in summary_c  # the photo's centre was classified, and the user is told
    assert "evidence for Horror & Thriller" in client.predict(pic, "horror", api_name="/heatmap")[1]
    assert _app_error(client, pic, "Western", api_name="/heatmap") == UNKNOWN_WESTERN


@needs_posters
def test_api_heatmap_of_another_picture_is_not_the_kept_one(client, synthetic_picture):
    """The session keeps the last classified picture's analysis; /heatmap with another picture must analyse that."""
    _needs("classifier")
    from gradio_client import handle_file

    a, b = handle_file(str(synthetic_picture)), handle_file(str(DATA_DIR / "images" / "train_00001.jpg"))
    first_a = client.predict(a, "top", api_name="/classify")[2].splitlines()[0]
    first_b = client.predict(b, "top", api_name="/classify")[2].splitlines()[0]
    assert first_a != first_b, "pick two pictures the classifier tells apart"
    assert client.predict(a, "Comedy", api_name="/heatmap")[1].startswith(first_a)  # not b's kept analysis


def test_api_classify_odd_modes(client, tmp_path):
    _needs("classifier")
    from gradio_client import handle_file

    odd = make_odd_images(tmp_path)  # all modes are checked in the library (test_images); three through the app
    for name in ("cmyk.jpg", "gray16.png", "animated.gif"):
        label, _, summary, _, _ = client.predict(handle_file(str(odd[name])), "top", api_name="/classify")
        assert set(_confidences(label)) == set(G.DISPLAY_NAMES.values()), name
        assert ("first frame was used" in summary) == (name == "animated.gif"), summary


def test_api_generate_latent_engine_and_a_bad_engine_name(client):
    _needs("generator")
    _needs("generator-latent")
    from gradio_client.exceptions import AppError

    gallery = client.predict(["Romance"], 2, 4, 1.0, "native", "", "", "", "none", "latent", api_name="/generate")
    assert len(gallery) == 2 and gallery[0]["caption"] == "#1 · seed 4 · Romance"  # the default engine: not named
    instant = client.predict(["Romance"], 1, 4, 1.0, "native", "", "", "", "none", "instant", api_name="/generate")
    assert instant[0]["caption"] == "#1 · seed 4 · Romance · instant GAN"
    with Image.open(instant[0]["image"]) as im:
        assert im.size == (128, 192)
    with Image.open(gallery[0]["image"]) as im:
        assert im.size == (160, 240) and np.asarray(im.convert("RGB")).std() > 1.0
    with pytest.raises(AppError, match="Engine must be one of latent, instant"):
        client.predict(["Romance"], 1, 4, 1.0, "native", "", "", "", "none", "diffusion", api_name="/generate")
    # classifier guidance (the 11th input): the latent engine only, and it changes the poster
    guided = client.predict(["Romance"], 1, 4, 1.0, "native", "", "", "", "none", "latent", 2, api_name="/generate")
    assert guided[0]["caption"] == "#1 · seed 4 · Romance · guided 2 steps"
    with Image.open(guided[0]["image"]) as a, Image.open(gallery[0]["image"]) as b:
        assert a.size == b.size and a.tobytes() != b.tobytes()
    assert "latent engine only" in _app_error(client, ["Romance"], 1, 4, 1.0, "native", "", "", "", "none", "instant",
                                               2, api_name="/generate")


def test_api_generate_real_output(client):
    _needs("generator")
    gallery = client.predict(["Horror_Thriller"], 3, 11, 0.7, "native", "", "", "", "none", api_name="/generate")
    assert len(gallery) == 3 and gallery[2]["caption"] == "#3 · seed 11 · Horror & Thriller"
    sizes = set()
    for item in gallery:
        with Image.open(item["image"]) as im:
            sizes.add(im.size)
            assert np.asarray(im.convert("RGB")).std() > 1.0  # not a blank image
    (w, h), = sizes
    assert abs(w / h - 2 / 3) < 0.02 and w >= 64
    again = client.predict(["Horror_Thriller"], 3, 11, 0.7, "native", "", "", "", "none", api_name="/generate")
    with Image.open(gallery[0]["image"]) as a, Image.open(again[0]["image"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # same seed, same poster
    up = client.predict([], 1, 5, 0.7, "400x600", api_name="/generate")  # typography left out: invented
    assert len(up) == 2 and up[0]["caption"] == "#1 titled" and up[1]["caption"].startswith("#1 · seed 5 · any genre")
    for item in up:
        with Image.open(item["image"]) as im:
            assert im.size == (400, 600)
    strip, gif = client.predict(["Comedy"], ["Horror_Thriller"], 1, 2, 4, "native", 0.7, api_name="/morph")
    assert len(strip) == 4
    with Image.open(strip[0]["image"]) as frame, Image.open(gif) as im:  # morph runs on the instant GAN
        assert im.format == "GIF" and im.size == frame.size  # animated (PIL merges identical frames: not asserted)


def test_api_generate_title_overlay_with_and_without(client):
    _needs("generator")
    gallery = client.predict(["Comedy"], 2, 11, 0.7, "400x600", "Two Left Feet", "A romantic disaster",
                             "Directed by Ana Lima", "title", api_name="/generate")
    assert [g["caption"] for g in gallery] == ["#1 titled", "#1 · seed 11 · Comedy", "#2 titled",
                                               "#2 · seed 11 · Comedy"]
    with Image.open(gallery[0]["image"]) as titled, Image.open(gallery[1]["image"]) as plain:
        diff = np.abs(np.asarray(titled, np.int16) - np.asarray(plain, np.int16)).max(2)
    assert titled.size == plain.size == (400, 600)
    assert (diff > 40).mean() > 0.01  # text and scrim were drawn ...
    rows = (diff > 40).mean(1)
    assert rows[280:320].max() == 0  # ... at the ends of the poster, never over its middle
    assert _app_error(client, ["Comedy"], 1, 0, 0.7, "native", "🎬🎬", "", "", api_name="/generate") == \
        "Title needs letters or digits: emoji and symbols alone cannot be typeset with the poster fonts."
    assert _app_error(client, ["Comedy"], 1, 0, 0.7, "native", "", "", "", "title", api_name="/generate") == \
        "Typography 'title' needs a title: type one, or choose 'invented' for an invented one (or 'none')."


def test_api_generate_invents_typography_by_default(client):
    """Issue 23: the default output of /generate (as of the tab) is a poster: an invented title, tagline and
    credits, each poster with and without them; a seed reproduces them; "none" gives the bare pictures."""
    _needs("generator")
    _needs("titles")
    gallery = client.predict(["Horror_Thriller"], 2, 7, 0.7, "400x600", api_name="/generate")
    expected = ["#1 titled", "#1 · seed 7 · Horror & Thriller", "#2 titled", "#2 · seed 7 · Horror & Thriller"]
    assert len(gallery) == 4 and all(g["caption"].startswith(e) for g, e in zip(gallery, expected)), gallery
    with Image.open(gallery[0]["image"]) as titled, Image.open(gallery[1]["image"]) as plain:
        diff = np.abs(np.asarray(titled, np.int16) - np.asarray(plain, np.int16)).max(2)
    rows = (diff > 40).mean(1)
    assert rows[:120].mean() > 0.01 and rows[-120:].mean() > 0.03  # names / tagline at the top, title and credits
    assert rows[280:320].max() == 0  # ... and the middle of the picture left alone
    again = client.predict(["Horror_Thriller"], 2, 7, 0.7, "400x600", "", "", "", "invented", api_name="/generate")
    with Image.open(gallery[2]["image"]) as a, Image.open(again[2]["image"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    bare = client.predict(["Horror_Thriller"], 2, 7, 0.7, "400x600", "", "", "", "none", api_name="/generate")
    assert len(bare) == 2
    with Image.open(bare[0]["image"]) as a, Image.open(gallery[1]["image"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_api_generate_takes_display_and_short_names(client):
    _needs("generator")

    def first(genres):
        item = client.predict(genres, 1, 11, 0.7, "native", "", "", "", "none", api_name="/generate")[0]
        with Image.open(item["image"]) as im:
            return np.asarray(im.convert("RGB")), item["caption"]

    label, caption = first(["Horror_Thriller"])
    for name in (["Horror & Thriller"], ["Horror"], ["thriller", "Horror & Thriller"]):
        img, cap = first(name)
        assert np.array_equal(img, label) and cap == caption == "#1 · seed 11 · Horror & Thriller", name
    both, cap = first(["Action & Adventure", "comedy"])
    assert cap == "#1 · seed 11 · Action & Adventure + Comedy" and not np.array_equal(both, label)


def test_api_transfer_real_output(client, synthetic_picture):
    _needs("transfer")
    from gradio_client import handle_file

    pic = handle_file(str(synthetic_picture))  # 300x200: not 2:3
    out, md, gallery = client.predict(pic, "Horror & Thriller", "fast", 1.0, False, "256x384", 10, [], "crop",
                                      api_name="/transfer")
    with Image.open(out) as im:
        assert im.size == (256, 384)
        crop = np.asarray(im.convert("RGB"), dtype=np.float32)
        assert crop.std() > 1.0
    assert md.startswith("**Exemplar posters for Horror & Thriller:**")
    if (DATA_DIR / "labels.csv").is_file():  # each exemplar with its own genres (from the bank or the labels)
        listed = [line for line in md.splitlines() if line[:1].isdigit()]
        assert listed and all(" · *" in line for line in listed), md
    assert "ℹ️ Your 300x200 picture was centre-cropped to the 2:3 poster shape (256x384)." in md
    fit_out, fit_md, _ = client.predict(pic, "horror", "fast", 1.0, False, "256x384", 10, [], "fit",
                                        api_name="/transfer")
    assert "fitted whole (blurred backdrop)" in fit_md and "centre-cropped" not in fit_md
    with Image.open(fit_out) as im:
        assert np.abs(np.asarray(im.convert("RGB"), dtype=np.float32) - crop).mean() > 3.0
    raw_out, _, _ = client.predict(pic, "Horror & Thriller", "fast", 1.0, False, "256x384", 10, [], "crop", False,
                                   api_name="/transfer")  # without the clean-up: another picture
    with Image.open(raw_out) as im:
        assert np.abs(np.asarray(im.convert("RGB"), dtype=np.float32) - crop).mean() > 1.0


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", sorted(set(BAD_FILE_MESSAGES) - {"huge_50mb.jpg"}))
def test_api_bad_image_gives_message_and_server_keeps_serving(client, app_server, bad_files, name):
    from gradio_client import handle_file

    msg = _app_error(client, handle_file(str(bad_files[name])), "top", api_name="/classify")
    assert BAD_FILE_MESSAGES[name].lower() in msg.lower() and "\n" not in msg, msg
    assert app_server.alive()


def test_50mb_upload_is_refused_by_its_size(client, app_server, bad_files):
    """25 MB is the server's limit: gradio_client refuses to send more (it reads the limit from the server), and
    the server answers an upload above it with 413 before anything is decoded."""
    import httpx
    from gradio_client import handle_file

    huge = bad_files["huge_50mb.jpg"]
    with pytest.raises(ValueError, match=r"exceeds the maximum file size of 26214400 bytes"):
        client.predict(handle_file(str(huge)), "top", api_name="/classify")
    with open(huge, "rb") as f:
        r = httpx.post(f"{app_server.url}gradio_api/upload", files={"files": ("huge.jpg", f, "image/jpeg")},
                       timeout=120)
    assert r.status_code == 413 and "26214400 bytes" in r.text, (r.status_code, r.text[:200])
    small = httpx.post(f"{app_server.url}gradio_api/upload", files={"files": ("ok.png", b"x" * 1000, "image/png")},
                       timeout=60)
    assert small.status_code == 200  # the same route takes a small file
    assert app_server.alive()


def test_api_dream_and_masks_real_output(client, synthetic_picture):
    """/dream: a small genre dream with the classifier's view of it, then deep dream on a picture; /masks: three
    principal masks with captions."""
    _needs("classifier")
    from gradio_client import handle_file

    out, label, notes = client.predict(["Animation"], None, "none", "128x192", 20, 8, 4, 1.4, 1.0, 0,
                                       api_name="/dream")
    with Image.open(out) as im:
        assert im.size == (128, 192)
    assert label["label"] == "Animation"
    pic = handle_file(str(synthetic_picture))
    out, _, notes = client.predict([], pic, "classifier.block3", "picture-150", 20, 2, 2, 1.4, 1.0, 0,
                                   api_name="/dream")
    with Image.open(out) as im:
        assert im.size == (150, 100)
    masks, text = client.predict(pic, api_name="/masks")
    assert len(masks) == 3 and all(m["caption"].startswith(f"Mask {i} (") for i, m in enumerate(masks, 1))
    assert text.count("of the evidence") == 3


def test_other_tabs_keep_serving_while_a_dream_runs(client, synthetic_picture):
    """A dream runs in its own queue: a classify request sent while it runs comes back before it ends."""
    _needs("classifier")
    from gradio_client import handle_file

    job = client.submit(["Drama"], None, "none", "256x384", 400, 8, 4, 1.4, 1.0, 0, api_name="/dream")
    t0 = time.time()
    while job.status().code.name not in ("PROCESSING", "ITERATING") and time.time() - t0 < 60:
        time.sleep(0.2)
    label = client.predict(handle_file(str(synthetic_picture)), "top", api_name="/classify")[0]
    assert label["label"] and not job.done()
    job.cancel()


@pytest.mark.parametrize("api_name, args, message", [
    ("/generate", (["Comedy"], 17, 1, 0.7, "native"), "Count must be a whole number from 1 to 16, got 17."),
    ("/generate", (["Comedy"], 500, 1, 0.7, "native"), "Count must be a whole number from 1 to 16, got 500."),
    ("/generate", (["Comedy"], 2, -5, 0.7, "native"), "Seed must be a whole number from 0 to 2147483647, got -5."),
    ("/generate", (["Comedy"], 2, None, 0.7, "native"), "Seed is missing: give a whole number from 0 to 2147483647."),
    ("/generate", (["Comedy"], 2, 1, 0.0, "native"), "Truncation must be above 0 (and at most 1), got 0.0."),
    ("/generate", (["Western"], 2, 1, 0.7, "native"), UNKNOWN_WESTERN),
    ("/morph", (["Comedy"], ["Drama"], 0, 0, 40, "native", 0.7), "Frames must be a whole number from 2 to 16, got 40."),
    ("/classify", (None, "top"), "No image was given: upload a picture first."),
    ("/transfer", (None, "Comedy", "fast", 1.0, False, "256x384", 10, []),
     "No picture: upload one (or pick an example) first."),
    ("/transfer", ("PIC", "Comedy", "fast", -1.0, False, "256x384", 10, []), "Strength must be between 0 and 1, got -1.0."),
    ("/transfer", ("PIC", "Comedy", "quality", 1.0, False, "256x384", 0, []),
     "Steps must be a whole number from 1 to 500, got 0."),
    ("/transfer", ("PIC", "", "fast", 1.0, False, "256x384", 10, []), "Choose a genre (or upload your own style images)."),
    ("/transfer", ("PIC", "Comedy", "slow", 1.0, False, "256x384", 10, []),
     "Engine must be one of fast, quality, translate, bridge, got 'slow'."),
    ("/dream", ([], None, "none", "auto", 20, 8, 4, 1.4, 1.0, 0),
     "Choose a genre to dream of, or a layer to deep-dream your picture with."),
    ("/dream", (["Comedy"], None, "relu4_2", "auto", 20, 8, 4, 1.4, 1.0, 0),
     "Deep dream with a layer works on a picture: upload one (or drop the layer for a genre dream from noise)."),
    ("/dream", (["Comedy"], None, "none", "auto", 5000, 8, 4, 1.4, 1.0, 0),
     "Steps must be a whole number from 1 to 1000, got 5000."),
    ("/masks", (None,), "No image was given: upload a picture first."),
])
def test_api_bad_arguments_get_the_services_message(client, app_server, synthetic_picture, api_name, args, message):
    """`raw` widgets hand out-of-range values to the services, so the user reads the service's message (never
    Gradio's "Value 500 is greater than maximum value 16")."""
    _needs({"/generate": "generator", "/morph": "generator", "/classify": "classifier", "/dream": "classifier",
            "/masks": "classifier"}.get(api_name, "transfer"))
    from gradio_client import handle_file

    args = tuple(handle_file(str(synthetic_picture)) if a == "PIC" else a for a in args)
    assert _app_error(client, *args, api_name=api_name) == message
    assert app_server.alive()


# ------------------------------------------------------------------------------------------ one message everywhere
def test_count_500_same_message_from_cli_library_and_api(client, tmp_path):
    """The same bad argument gets the same one-line message from the CLI (stderr `error: ...`, exit 2), the library
    (InvalidArgumentError) and the API (AppError)."""
    _needs("generator")
    from poster_studio.generate import PosterGenerator

    gen = PosterGenerator.load()
    with pytest.raises(InvalidArgumentError) as info:
        gen.check_inputs(n=500)
    msg = str(info.value)
    assert msg == "Count must be a whole number from 1 to 16, got 500."
    with pytest.raises(InvalidArgumentError) as again:
        gen.generate(["Comedy"], n=500)
    assert str(again.value) == msg
    proc = _cli("generate", "--genres", "Comedy", "--n", "500", "--out", str(tmp_path / "out"))
    assert (proc.returncode, proc.stderr) == (2, f"error: {msg}\n")
    assert not (tmp_path / "out").exists()
    assert _app_error(client, ["Comedy"], 500, 0, 0.7, "native", api_name="/generate") == msg


@pytest.mark.parametrize("cli_args, api_args, library_kwargs", [
    (["--genre", "Comedy", "--engine", "quality", "--steps", "5000"], ("Comedy", "quality", 1.0, False, "384x576", 5000),
     dict(genre="Comedy", engine="quality", steps=5000)),
    (["--genre", "Western"], ("Western", "fast", 1.0, False, "384x576", 10), dict(genre="Western")),
])
def test_transfer_argument_same_message_from_cli_library_and_api(client, synthetic_picture, tmp_path, cli_args,
                                                                  api_args, library_kwargs):
    _needs("transfer")
    from gradio_client import handle_file

    from poster_studio.transfer import GenreTransfer

    gt = GenreTransfer.load()
    with pytest.raises(InvalidArgumentError) as info:
        gt.check_inputs(content=synthetic_picture, **library_kwargs)
    msg = str(info.value)
    assert msg in ("Steps must be a whole number from 1 to 500, got 5000.", UNKNOWN_WESTERN)
    with pytest.raises(InvalidArgumentError) as again:
        gt.transfer(synthetic_picture, **library_kwargs)
    assert str(again.value) == msg
    out = tmp_path / "out.png"
    proc = _cli("transfer", "--content", str(synthetic_picture), "--out", str(out), *cli_args)
    assert (proc.returncode, proc.stderr) == (2, f"error: {msg}\n")
    assert not out.exists()
    assert _app_error(client, handle_file(str(synthetic_picture)), *api_args, [], api_name="/transfer") == msg


def test_refusals_write_no_traceback_to_the_server_log(client, app_server, bad_files):
    from gradio_client import handle_file

    mark = app_server.log_size()
    _app_error(client, ["Comedy"], 500, 0, 0.7, "native", api_name="/generate")
    _app_error(client, handle_file(str(bad_files["page.png"])), "top", api_name="/classify")
    _app_error(client, None, "Comedy", "fast", 1.0, False, "256x384", 10, [], api_name="/transfer")
    deadline = time.monotonic() + 10
    while "refused: No picture" not in app_server.log_since(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    log = app_server.log_since(mark)
    # each refusal is one INFO line (so the log is being read), and nothing more
    for text in ("refused: Count must be a whole number from 1 to 16, got 500.", "refused: page.png is not an image",
                 "refused: No picture"):
        assert text in log, log[-3000:]
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


def test_server_still_serves_after_bad_input(client, app_server, synthetic_picture):
    import urllib.request

    with urllib.request.urlopen(app_server.url, timeout=10) as r:
        assert r.status == 200
    if checkpoint_missing("classifier") is None:
        from gradio_client import handle_file

        label = client.predict(handle_file(str(synthetic_picture)), "top", api_name="/classify")[0]
        assert len(label["confidences"]) == len(G.GENRES)
    assert app_server.alive()


# ------------------------------------------------------------------------------------------ in-process, real services
def test_classify_tab_keeps_the_analysis_for_the_heatmap(synthetic_picture, monkeypatch):
    """Changing the heatmap genre after classifying reruns only Grad-CAM on the kept analysis: the summary names the
    new genre, and the network's trunk does not run again."""
    _needs("classifier")
    import app
    from ui.common import Services

    services = Services()
    demo = app.build_demo(services)
    label, heat, summary, _, _, kept = _fn(demo, "classify")(str(synthetic_picture), "top")
    top = max(label, key=label.get)
    assert f"evidence for {top}" in summary and kept is not None

    def boom(*args, **kwargs):
        raise AssertionError("the classifier's trunk ran again")

    monkeypatch.setattr(services.classifier.service.model, "feature_maps", boom)  # the network's trunk(s)
    heat2, summary2 = _fn(demo, "heatmap")(str(synthetic_picture), "Comedy", kept)
    assert "evidence for Comedy" in summary2 and Path(heat2).is_file()
    import gradio as gr

    # without a kept analysis of this picture (none, or another picture's), the network has to run
    another = synthetic_picture.parent / "another.png"
    Image.open(synthetic_picture).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(another)
    for other in ((str(synthetic_picture), "Comedy", None), (str(another), "Comedy", kept)):
        with pytest.raises(gr.Error, match="Something went wrong"):
            _fn(demo, "heatmap")(*other)


def test_generate_handler_typography_and_make_it_a_poster(tmp_path):
    """In process, the real services: the Generate handler's default typography (the tab's: invented) gives each
    poster with and without it, "none" the bare posters; the Genre transfer and Dream tabs' "make it a poster"
    typesets their result (invented, or the title typed) and says so when there is no result yet."""
    _needs("generator")
    _needs("titles")
    import gradio as gr

    import app
    from ui.common import Services

    demo = app.build_demo(Services())
    gen = _fn(demo, "generate")
    items = gen(["Drama"], 2, 3, 0.7, "native", "", "", "", "invented")
    expected = ["#1 titled", "#1 · seed 3 · Drama", "#2 titled", "#2 · seed 3 · Drama"]
    assert len(items) == 4 and all(c.startswith(e) for (_, c), e in zip(items, expected)), items
    bare = gen(["Drama"], 2, 3, 0.7, "native", "", "", "", "none")
    assert len(bare) == 2 and all(c.startswith(e) for (_, c), e in zip(bare, expected[1::2])), bare
    with Image.open(items[1][0]) as plain:
        plain.resize((400, 600)).save(tmp_path / "result.png")
    for name, genres in (("transfer_poster", "Horror_Thriller"), ("dream_poster", ["Romance"])):
        poster = _fn(demo, name)
        invented = poster(str(tmp_path / "result.png"), genres, "", 4)
        typed = poster(str(tmp_path / "result.png"), genres, "The Quiet House", 4)
        with Image.open(invented) as a, Image.open(typed) as b, Image.open(tmp_path / "result.png") as src:
            assert a.size == b.size == src.size == (400, 600)
            assert np.abs(np.asarray(a, np.int16) - np.asarray(src, np.int16)).mean() > 2
            assert not np.array_equal(np.asarray(a), np.asarray(b))
        assert Path(poster(str(tmp_path / "result.png"), genres, "", 4)).read_bytes() == Path(invented).read_bytes()
        with pytest.raises(gr.Error, match="make one first, then make it a poster"):
            poster(None, genres, "", 0)
