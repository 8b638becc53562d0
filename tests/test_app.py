"""The app: builds without checkpoints (tabs say why), the glue validates every input, and the real server on
loopback answers /generate, /classify, /transfer through gradio_client with real outputs; bad input through
the API gives a one-line error and the server keeps serving."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import (BAD_FILE_MESSAGES, CONTENT_DIR, DATA_DIR, checkpoint_missing, make_bad_files,
                      make_odd_images)
from poster_studio import genres as G
from poster_studio import ui_helpers as U
from poster_studio.errors import CheckpointError, InvalidArgumentError

STARTUP_LIMIT_S = float(os.environ.get("POSTER_STUDIO_STARTUP_LIMIT", "15"))


def _fn(demo, api_name: str):
    for block_fn in demo.fns.values():
        if block_fn.api_name == api_name:
            return block_fn.fn
    raise KeyError(api_name)


def _poster_path() -> Path:
    """A real poster when the data is here (a val poster), else a content photo, else a synthetic picture."""
    if (DATA_DIR / "images").is_dir():
        for p in sorted((DATA_DIR / "images").glob("val_*.jpg"))[:1]:
            return p
    if (CONTENT_DIR / "astronaut.png").is_file():
        return CONTENT_DIR / "astronaut.png"
    raise FileNotFoundError


@pytest.fixture(scope="module")
def synthetic_picture(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:300, 0:200]
    a = np.stack([127 + 120 * np.sin(x / 17 + c) * np.cos(y / 23) for c in range(3)], -1) + rng.normal(0, 8, (300, 200, 3))
    path = tmp_path_factory.mktemp("pic") / "picture.png"
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"))


# ------------------------------------------------------------------------------------------ in-process
@pytest.fixture
def demo_without_checkpoints(tmp_path, monkeypatch):
    import app

    monkeypatch.setenv("POSTER_STUDIO_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.delenv("POSTER_STUDIO_HUB_REPO", raising=False)
    services = U.Services()
    demo = app.build_demo(services)
    services.load_all()
    return demo, services


def test_build_demo_without_checkpoints_tabs_say_why(demo_without_checkpoints):
    demo, services = demo_without_checkpoints
    api_names = {f.api_name for f in demo.fns.values()}
    assert {"generate", "classify", "transfer"} <= api_names
    for slot in services.slots:
        assert slot.state == "failed"
        md = slot.status_markdown()
        assert md.startswith("### ⚠️ This tab is unavailable") and "**Model not available:** " in md, md
        assert "config.json" in md or "not part of this build" in md, md
        assert "train" in md.lower()  # the fix is named
        with pytest.raises(CheckpointError, match="not available"):
            slot.get()


def test_handlers_give_one_line_gradio_errors(demo_without_checkpoints, bad_files, synthetic_picture):
    import gradio as gr

    demo, _ = demo_without_checkpoints
    classify = _fn(demo, "classify")
    with pytest.raises(gr.Error, match="not an image"):
        classify(str(bad_files["page.png"]), "top")
    with pytest.raises(gr.Error, match="classifier model is not available"):
        classify(str(synthetic_picture), "top")
    generate = _fn(demo, "generate")
    with pytest.raises(gr.Error, match="Count"):
        generate([], 0, 1, 0.7, "native")
    with pytest.raises(gr.Error, match="generator model is not available"):
        generate(["Comedy"], 2, 1, 0.7, "native")
    transfer = _fn(demo, "transfer")
    with pytest.raises(gr.Error, match="No picture"):
        list(transfer(None, "Comedy", "fast", 1.0, False, "256x384", 10, [], None))
    with pytest.raises(gr.Error, match="Strength"):
        list(transfer(str(synthetic_picture), "Comedy", "fast", float("nan"), False, "256x384", 10, [], None))
    with pytest.raises(gr.Error, match="transfer model is not available"):
        list(transfer(str(synthetic_picture), "Comedy", "fast", 1.0, False, "256x384", 10, [], None))


def test_examples_do_not_need_the_content_folder(tmp_path, monkeypatch):
    import app

    monkeypatch.setenv("POSTER_STUDIO_CONTENT", str(tmp_path / "no-such-folder"))
    assert U.content_examples() == []
    app.build_demo(U.Services())  # builds (as on a Space without ../shared)


def test_content_examples_found_when_present(monkeypatch, tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setenv("POSTER_STUDIO_CONTENT", str(tmp_path))
    assert U.content_examples() == [str(tmp_path / "a.png")]


@pytest.mark.parametrize("kwargs, match", [
    ({"count": 0}, "Count"), ({"count": 17}, "Count"), ({"count": float("nan")}, "Count"),
    ({"count": -3}, "Count"), ({"count": 2.5}, "Count"), ({"count": None}, "Count"), ({"count": "many"}, "Count"),
    ({"seed": -1}, "Seed"), ({"seed": float("inf")}, "Seed"), ({"seed": 1.5}, "Seed"),
    ({"truncation": float("nan")}, "Truncation"), ({"truncation": 0}, "Truncation"), ({"truncation": 1.5}, "Truncation"),
    ({"size": "9000x9000"}, "Size"), ({"genres": ["Western"]}, "Unknown genre"),
])
def test_generate_arguments_checked(kwargs, match):
    args = dict(genres=["Comedy"], count=4, seed=0, truncation=0.7, size="native") | kwargs
    with pytest.raises(InvalidArgumentError, match=match):
        U.generate_args(**args)


def test_generate_arguments_accepted():
    a = U.generate_args(["comedy", "Romance", "Comedy"], 16.0, 123, 1.0, "400x600")
    assert a == {"genres": ["Comedy", "Romance"], "n": 16, "seed": 123, "truncation": 1.0, "size": "400x600"}
    assert U.generate_args([], 1, 0, 0.1)["genres"] == []  # none ticked = any genre


@pytest.mark.parametrize("kwargs, match", [
    ({"strength": float("nan")}, "Strength"), ({"strength": -0.1}, "Strength"), ({"strength": 2}, "Strength"),
    ({"engine": "quality", "steps": 0}, "Steps"), ({"engine": "quality", "steps": float("nan")}, "Steps"),
    ({"engine": "quality", "steps": 5000}, "Steps"), ({"size": "10x10"}, "(?i)size|width"),
    ({"size": "big"}, "(?i)size"), ({"engine": "slow"}, "Engine"), ({"genre": None}, "genre"),
    ({"genre": "Western"}, "Unknown genre"),
])
def test_transfer_arguments_checked(kwargs, match):
    args = dict(genre="Comedy", engine="fast", strength=1.0, preserve_color=False, size="384x576", steps=100) | kwargs
    with pytest.raises(InvalidArgumentError, match=match):
        U.transfer_args(**args)


def test_transfer_arguments_accepted():
    a = U.transfer_args(None, "quality", 0.5, True, "256x384", 20.0, ["/x/style.png"])
    assert a["genre"] is None and a["steps"] == 20 and a["style_images"] == ["/x/style.png"]
    assert U.transfer_args("horror", "fast", 1, False, "384x576", None)["steps"] is None  # steps only for quality


class _FakeGenerator:
    native_size = (128, 192)

    def generate(self, genres, n, seed, truncation, size):
        w, h = (400, 600) if size == "400x600" else self.native_size
        return [Image.new("RGB", (w, h), (seed % 255, i * 10, 0)) for i in range(n)]

    def morph(self, genres_a, genres_b, seed_a, seed_b, steps, size, truncation):
        return [Image.new("RGB", self.native_size, (i * 20, 0, 0)) for i in range(steps)]


def test_generate_and_morph_glue_with_a_fake_generator():
    out = U.run_generate(_FakeGenerator(), ["Horror_Thriller", "Comedy"], 3, 7, 0.7, "native")
    assert len(out) == 3 and out[0][0].size == (128, 192)
    assert "Horror & Thriller + Comedy" in out[0][1] and "seed 7" in out[0][1] and out[1][1].startswith("#2")
    frames, gif = U.run_morph(_FakeGenerator(), ["Comedy"], ["Drama"], 1, 2, 5)
    assert len(frames) == 5
    with Image.open(gif) as im:
        assert im.is_animated and im.n_frames == 8  # ping-pong


def test_service_slot_reports_broken_module(monkeypatch):
    slot = U.ServiceSlot("x", "test", "poster_studio.no_such_module", "X", "fix it")
    assert slot.load() is None and slot.state == "failed"
    assert "not part of this build" in slot.status_markdown()


# ------------------------------------------------------------------------------------------ the server
def test_server_starts_within_limit(app_server):
    print(f"python app.py served after {app_server.startup_s:.1f} s")
    assert app_server.startup_s < STARTUP_LIMIT_S


def test_api_lists_the_main_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/classify", "/transfer"} <= set(named)


def _confidences(label: dict) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in label["confidences"]}


def test_api_classify_real_output(client):
    reason = checkpoint_missing("classifier")
    if reason:
        pytest.skip(reason)
    from gradio_client import handle_file

    label, heat, summary, similar_md, _gallery = client.predict(handle_file(str(_poster_path())), "top",
                                                                api_name="/classify")
    conf = _confidences(label)
    assert set(conf) == set(G.DISPLAY_NAMES.values())
    assert all(0.0 <= p <= 1.0 and math.isfinite(p) for p in conf.values())
    assert label["label"] == max(conf, key=conf.get)
    with Image.open(heat) as im:
        assert im.size[0] >= 16 and abs(im.size[0] / im.size[1] - 2 / 3) < 0.05  # poster-shaped overlay
    assert "Predicted genres" in summary
    assert "similar" in similar_md.lower()
    heat2 = client.predict(handle_file(str(_poster_path())), "Comedy", api_name="/heatmap")
    assert Path(heat2).is_file()


def test_api_classify_odd_modes(client, tmp_path):
    reason = checkpoint_missing("classifier")
    if reason:
        pytest.skip(reason)
    from gradio_client import handle_file

    odd = make_odd_images(tmp_path)  # all modes are checked in the library (test_images); three through the app
    for name in ("cmyk.jpg", "gray16.png", "animated.gif"):
        path = odd[name]
        label = client.predict(handle_file(str(path)), "top", api_name="/classify")[0]
        assert set(_confidences(label)) == set(G.DISPLAY_NAMES.values()), name


def test_api_generate_real_output(client):
    reason = checkpoint_missing("generator")
    if reason:
        pytest.skip(reason)
    gallery = client.predict(["Horror_Thriller"], 3, 11, 0.7, "native", api_name="/generate")
    assert len(gallery) == 3
    sizes = set()
    for item in gallery:
        with Image.open(item["image"]) as im:
            sizes.add(im.size)
            assert np.asarray(im.convert("RGB")).std() > 1.0  # not a blank image
    (w, h), = sizes
    assert abs(w / h - 2 / 3) < 0.02 and w >= 64
    again = client.predict(["Horror_Thriller"], 3, 11, 0.7, "native", api_name="/generate")
    with Image.open(gallery[0]["image"]) as a, Image.open(again[0]["image"]) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))  # same seed, same poster
    up = client.predict([], 1, 5, 0.7, "400x600", api_name="/generate")
    with Image.open(up[0]["image"]) as im:
        assert im.size == (400, 600)
    strip, gif = client.predict(["Comedy"], ["Horror_Thriller"], 1, 2, 4, "native", 0.7, api_name="/morph")
    assert len(strip) == 4
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.size == (w, h)  # animated (PIL merges identical frames, so not asserted)


def test_api_transfer_real_output(client, synthetic_picture):
    reason = checkpoint_missing("transfer")
    if reason:
        pytest.skip(reason)
    from gradio_client import handle_file

    content = CONTENT_DIR / "chelsea.png" if (CONTENT_DIR / "chelsea.png").is_file() else synthetic_picture
    out, exemplars_md, _gallery = client.predict(handle_file(str(content)), "Horror_Thriller", "fast", 1.0, False,
                                                 "256x384", 10, [], api_name="/transfer")
    with Image.open(out) as im:
        assert im.size == (256, 384)
        assert np.asarray(im.convert("RGB")).std() > 1.0
    assert "Exemplar posters for Horror & Thriller" in exemplars_md


@pytest.mark.parametrize("name", sorted(set(BAD_FILE_MESSAGES) - {"huge_50mb.jpg"}))
def test_api_bad_image_gives_message_and_server_keeps_serving(client, app_server, bad_files, name):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(bad_files[name])), "top", api_name="/classify")
    msg = str(info.value)
    assert BAD_FILE_MESSAGES[name].lower() in msg.lower() and "Traceback" not in msg, msg
    assert app_server.alive()


def test_api_50mb_upload_is_refused(client, app_server, bad_files, synthetic_picture):
    from gradio_client import handle_file

    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(bad_files["huge_50mb.jpg"])), "top", api_name="/classify")
    assert "413" in str(info.value) or "too large" in str(info.value).lower() or "size" in str(info.value).lower(), \
        str(info.value)[:300]
    assert app_server.alive()


@pytest.mark.parametrize("api_name, args, match", [
    ("/generate", (["Comedy"], 17, 1, 0.7, "native"), "maximum|Count"),
    ("/generate", (["Comedy"], 2, -5, 0.7, "native"), "Seed|minimum"),
    ("/generate", (["Western"], 2, 1, 0.7, "native"), "Western"),
    ("/transfer", (None, "Comedy", "fast", 1.0, False, "256x384", 10, []), "picture"),
    ("/transfer", ("PIC", "Comedy", "fast", -1.0, False, "256x384", 10, []), "minimum|Strength"),
    ("/transfer", ("PIC", "Comedy", "quality", 1.0, False, "256x384", 0, []), "minimum|Steps"),
    ("/transfer", ("PIC", "", "fast", 1.0, False, "256x384", 10, []), "genre|choices"),
])
def test_api_bad_arguments(client, app_server, synthetic_picture, api_name, args, match):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    args = tuple(handle_file(str(synthetic_picture)) if a == "PIC" else a for a in args)
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=api_name)
    assert app_server.alive()


def test_server_still_serves_after_bad_input(client, app_server, synthetic_picture):
    import urllib.request

    with urllib.request.urlopen(app_server.url, timeout=10) as r:
        assert r.status == 200
    if checkpoint_missing("classifier") is None:
        from gradio_client import handle_file

        label = client.predict(handle_file(str(synthetic_picture)), "top", api_name="/classify")[0]
        assert len(label["confidences"]) == len(G.GENRES)
    assert app_server.alive()


class _FakeTransfer:
    """Quality-engine stand-in: reports progress with previews and stops early when cancelled."""

    def __init__(self):
        import threading

        self.started = threading.Event()

    def exemplars(self, genre):
        return [{"id": "train_00001", "title": "Alpha", "year": "2001"}]

    def transfer(self, content, genre, *, engine, strength, preserve_color, size, style_images, steps, progress,
                 cancel):
        import time

        w, h = (int(v) for v in size.split("x"))
        for i in range(steps):
            if cancel is not None and cancel.is_set():
                return Image.new("RGB", (w, h), (0, 0, 255))  # partial result
            if progress is not None:
                progress((i + 1) / steps, Image.new("RGB", (w, h), (i, 0, 0)) if i % 5 == 0 else None)
            self.started.set()
            time.sleep(0.01)
        return Image.new("RGB", (w, h), (0, 255, 0))


def _ready_services(**services):
    s = U.Services()
    for key, svc in services.items():
        slot = getattr(s, key)
        slot.service = svc
        slot._done.set()
    return s


@pytest.mark.filterwarnings("ignore:Cancelled")
def test_quality_transfer_streams_previews_and_cancels(synthetic_picture):
    import threading

    import app

    fake = _FakeTransfer()
    demo = app.build_demo(_ready_services(transfer=fake))
    transfer = _fn(demo, "transfer")
    outs = list(transfer(str(synthetic_picture), "Drama", "quality", 1.0, False, "256x384", 20, [], None))
    assert len(outs) >= 3  # previews, then the result
    final, md, _ = outs[-1]
    with Image.open(final) as im:
        assert im.size == (256, 384) and im.convert("RGB").getpixel((0, 0)) == (0, 255, 0)
    assert "Alpha (2001)" in md
    # Cancel from "another request" while it runs: the partial result comes back, no error.
    fake.started.clear()
    cancel_fn = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "cancel_transfer")
    results = []
    t = threading.Thread(target=lambda: results.extend(
        transfer(str(synthetic_picture), "Drama", "quality", 1.0, False, "256x384", 1000, [], None)))
    t.start()
    assert fake.started.wait(10)
    cancel_fn(None)
    t.join(20)
    assert not t.is_alive()
    with Image.open(results[-1][0]) as im:
        assert im.convert("RGB").getpixel((0, 0)) == (0, 0, 255)  # the partial result
