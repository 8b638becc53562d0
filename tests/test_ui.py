"""The app's glue in ui/ without a server: ServiceSlot / Services, `guarded` (library errors -> one-line gr.Error),
`raw` (values reach the services unchanged), `gpu` (ZeroGPU's decorator when `spaces` is importable), result files,
poster lists, and the tabs' handlers over stand-in services (`run_watched` for the quality engine included)."""
from __future__ import annotations

import logging
import sys
import threading
import time
import types
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from poster_studio.errors import CheckpointError, InvalidArgumentError, PosterStudioError
from poster_studio.progress import Steps
from ui import common as U


def _fn(demo, api_name: str):
    for block_fn in demo.fns.values():
        if block_fn.api_name == api_name:
            return block_fn.fn
    raise KeyError(api_name)


def _ready_services(**services) -> U.Services:
    s = U.Services()
    for key, svc in services.items():
        slot = getattr(s, key)
        slot.service = svc
        slot._done.set()
    return s


# ------------------------------------------------------------------------------------------ services
def test_service_slot_loads_once_even_when_asked_at_once():
    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.2)
        return "the service"

    slot = U.ServiceSlot("thing", loader, "fix it")
    assert slot.state == "pending" and slot.status_markdown() == "⏳ Loading the thing model…"
    got = []
    threads = [threading.Thread(target=lambda: got.append(slot.get())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == ["the service"] * 4 and len(calls) == 1
    assert slot.state == "ready" and slot.status_markdown() == ""


def test_service_slot_failures_say_why():
    def broken():
        raise RuntimeError("weights are garbage")

    slot = U.ServiceSlot("thing", broken, "Set THING_REPO.")
    assert slot.load() is None and slot.state == "failed"
    md = slot.status_markdown()
    assert md.startswith("### ⚠️ This tab is unavailable") and "RuntimeError: weights are garbage" in md
    assert "Set THING_REPO." in md and "The other tabs keep working" in md
    with pytest.raises(PosterStudioError, match="The thing model is not available: RuntimeError: weights are garbage"):
        slot.get()

    def missing():
        raise CheckpointError("checkpoints/thing/config.json is missing. Train it with x.py.")

    slot = U.ServiceSlot("thing", missing, "Set THING_REPO.")
    slot.load()
    md = slot.status_markdown()
    assert "config.json is missing" in md and "Set THING_REPO." not in md  # the error already names the fix


def test_services_without_checkpoints_load_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTER_STUDIO_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.delenv("POSTER_STUDIO_HUB_REPO", raising=False)
    services = U.Services()
    thread = services.start_background()
    assert services.start_background() is thread  # one loader thread
    thread.join(60)
    for slot, name in zip(services.slots, ("generator", "classifier", "transfer", "classifier"), strict=True):
        assert slot.state == "failed"
        assert f"{name}/config.json" in slot.error and "Train it" in slot.error, slot.error
        assert slot.status_markdown().startswith("### ⚠️ This tab is unavailable\n\n**Model not available:** ")


# ------------------------------------------------------------------------------------------ guarded
def test_guarded_turns_library_errors_into_one_line_messages(caplog):
    @U.guarded
    def refuses():
        raise InvalidArgumentError("Count must be a whole number from 1 to 16, got 500.\nsecond line")

    @U.guarded
    def breaks():
        raise ZeroDivisionError("boom")

    @U.guarded
    def already():
        raise gr.Error("as is")

    caplog.set_level(logging.INFO, logger="poster_studio.app")
    with pytest.raises(gr.Error) as info:
        refuses()
    assert info.value.message == "Count must be a whole number from 1 to 16, got 500."
    assert info.value.print_exception is False
    assert [r.levelname for r in caplog.records] == ["INFO"] and caplog.records[0].exc_info is None
    caplog.clear()
    with pytest.raises(gr.Error) as info:
        breaks()
    assert info.value.message.startswith("Something went wrong (ZeroDivisionError).") and "boom" not in info.value.message
    assert caplog.records[0].levelname == "ERROR" and caplog.records[0].exc_info is not None  # traceback kept
    with pytest.raises(gr.Error, match="as is"):
        already()


def test_guarded_generators():
    @U.guarded
    def stream():
        yield 1
        raise InvalidArgumentError("Steps must be a whole number from 1 to 500, got 5000.")

    gen = stream()
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="got 5000"):
        next(gen)
    assert U.guarded(lambda x: x + 1)(1) == 2


# ------------------------------------------------------------------------------------------ raw, gpu
def test_raw_hands_the_value_to_the_service_unchanged():
    slider = gr.Slider(1, 16, step=1)
    with pytest.raises(gr.Error, match="greater than maximum value 16"):
        slider.preprocess(500)  # what Gradio would say by itself
    assert U.raw(gr.Slider(1, 16, step=1)).preprocess(500) == 500
    assert U.raw(gr.CheckboxGroup(U.GENRE_CHOICES)).preprocess(["Horror & Thriller", "Western"]) == \
        ["Horror & Thriller", "Western"]
    assert U.raw(gr.Number(minimum=0)).preprocess(None) is None


def test_gpu_without_spaces_returns_the_function(monkeypatch):
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError

    def handler():
        return 1

    assert U.gpu(handler) is handler


def _fake_spaces(monkeypatch) -> list:
    wrapped = []
    spaces = types.ModuleType("spaces")

    def GPU(fn):
        def on_gpu(*args, **kwargs):
            return fn(*args, **kwargs)
        on_gpu.zero_gpu = fn
        wrapped.append(fn.__name__)
        return on_gpu

    spaces.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    return wrapped


def test_gpu_with_spaces_wraps_the_handlers(monkeypatch):
    wrapped = _fake_spaces(monkeypatch)

    def handler(x):
        return x * 2

    out = U.gpu(handler)
    assert out is not handler and out.zero_gpu is handler and out(4) == 8
    import app

    demo = app.build_demo(U.Services())
    for name in ("generate", "morph", "transfer"):
        assert getattr(_fn(demo, name), "zero_gpu", None) is not None, name
    assert {"generate", "morph", "transfer"} <= set(wrapped)


# ------------------------------------------------------------------------------------------ files and lists
def test_output_files_unique_names_gif_and_purge():
    files = U.OutputFiles(max_age_s=0.0)
    img = Image.new("RGB", (20, 30), (10, 20, 30))
    a, b = files.save(img), files.save(img)
    assert a != b and Path(a).parent == files.folder and Path(a).name.startswith("poster-")
    with Image.open(a) as im:
        assert im.getpixel((0, 0)) == (10, 20, 30)
    frames = [Image.new("RGB", (20, 30), (i * 60, 0, 0)) for i in range(4)]
    with Image.open(files.save_gif(frames)) as gif:
        assert gif.n_frames == 6  # ping-pong: 0 1 2 3 2 1
    files._last_purge = time.monotonic() - 61  # a minute later, everything older than max_age goes
    time.sleep(0.01)
    files.save(img, "fresh")
    assert not Path(a).exists() and not Path(b).exists()


def test_poster_lists():
    items = [{"id": "train_00001", "title": "The Last Stand", "year": "2013", "distance": 0.0},
             {"id": "x", "title": "", "year": ""}]
    md = U.poster_list_markdown(items, "Most similar known posters", "distance", "distance ")
    assert md.splitlines() == ["**Most similar known posters:**", "", "1. The Last Stand (2013) — distance 0.000",
                               "2. x"]
    assert U.poster_list_markdown([], "Exemplars") == "**Exemplars:** none"
    for bad in ("../labels", "a/b", "", "no_such_poster"):
        assert U.poster_thumbnail(bad) is None


def test_poster_lists_give_each_poster_its_own_genres():
    items = [{"id": "train_1", "title": "Norbit", "year": "2007", "genres": ["Comedy", "Romance"]},
             {"id": "train_2", "title": "Amélie", "year": "2001", "genres": []}]
    md = U.poster_list_markdown(items, "Exemplar posters for Romance")
    assert md.splitlines()[2:] == ["1. Norbit (2007) · *Comedy + Romance*", "2. Amélie (2001)"]


def test_content_examples(monkeypatch, tmp_path):
    monkeypatch.setenv("POSTER_STUDIO_CONTENT", str(tmp_path / "no-such-folder"))
    assert U.content_examples() == [] and U.content_dir() is None
    import app

    app.build_demo(U.Services())  # builds without the example pictures (as on a Space without ../shared)
    Image.new("RGB", (64, 64)).save(tmp_path / "b.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setenv("POSTER_STUDIO_CONTENT", str(tmp_path))
    assert U.content_examples() == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]


# ------------------------------------------------------------------------------------------ handlers
class _FakeGenerator:
    native_size = (128, 192)
    upscale_method = "learned upscaler"
    engines = ("instant",)
    default_engine = morph_engine = "instant"

    def native_sizes(self):
        return {"instant": self.native_size}

    def check_inputs(self, engine=None):
        if engine not in (None, "instant"):
            raise InvalidArgumentError(f"The {engine} engine is not installed here; available: instant.")
        return {"engine": "instant"}

    def generate(self, genres, n, seed, truncation, size, engine=None, guidance=0, progress=None, cancel=None):
        self.check_inputs(engine=engine)
        w, h = (400, 600) if size == "400x600" else self.native_size
        return [Image.new("RGB", (w, h), (seed % 255, i * 10, 0)) for i in range(n)]

    def morph(self, genres_a, genres_b, seed_a, seed_b, steps, size, truncation):
        return [Image.new("RGB", self.native_size, (i * 20, 0, 0)) for i in range(steps)]


def test_generate_and_morph_handlers():
    import app

    demo = app.build_demo(_ready_services(generator=_FakeGenerator()))
    out = _fn(demo, "generate")(["Horror & Thriller", "comedy"], 3, 7, 0.7, "native")
    assert len(out) == 3 and out[1][1] == "#2 · seed 7 · Horror & Thriller + Comedy"
    with Image.open(out[0][0]) as im:
        assert im.size == (128, 192)
    assert _fn(demo, "generate")([], 1, 0, 0.7, "native")[0][1] == "#1 · seed 0 · any genre"
    with pytest.raises(gr.Error, match="latent engine is not installed here; available: instant"):
        _fn(demo, "generate")([], 1, 0, 0.7, "native", "", "", "", None, "latent")
    frames, gif = _fn(demo, "morph")(["Comedy"], ["Drama"], 1, 2, 5, "native", 0.7)
    assert len(frames) == 5
    with Image.open(gif) as im:
        assert im.is_animated and im.n_frames == 8  # ping-pong


def test_size_choices_name_the_upscaling_method():
    from ui.generate_tab import size_choices

    assert size_choices(_ready_services(generator=_FakeGenerator()).generator) == [
        ("Native 128x192", "native"), ("400x600 (learned upscaler)", "400x600")]


def test_size_choices_name_each_engines_native_size():
    """With both engines the Native label names both sizes (the latent engine's is not the GAN's); the morph strip's
    names only the instant GAN's, which it runs on."""
    from ui.generate_tab import size_choices

    class TwoEngines(_FakeGenerator):
        engines, default_engine = ("latent", "instant"), "latent"

        def native_sizes(self):
            return {"latent": (160, 240), "instant": (128, 192)}

    slot = _ready_services(generator=TwoEngines()).generator
    assert size_choices(slot)[0] == ("Native (Latent (v3) 160x240, Instant GAN 128x192)", "native")
    assert size_choices(slot, morph=True)[0] == ("Native 128x192", "native")


def test_handlers_without_checkpoints_say_which_model(tmp_path, monkeypatch):
    import app

    monkeypatch.setenv("POSTER_STUDIO_CHECKPOINTS", str(tmp_path / "empty"))
    monkeypatch.delenv("POSTER_STUDIO_HUB_REPO", raising=False)
    demo = app.build_demo(U.Services())
    with pytest.raises(gr.Error, match="poster generator model is not available: .*generator/config.json"):
        _fn(demo, "generate")(["Comedy"], 2, 1, 0.7, "native")
    with pytest.raises(gr.Error, match="genre classifier model is not available"):
        _fn(demo, "classify")(None, "top")
    with pytest.raises(gr.Error, match="genre transfer model is not available"):
        list(_fn(demo, "transfer")(None, "Comedy", "fast", 1.0, False, "256x384", 10, []))


class _FakeTransfer:
    """Quality-engine stand-in: reports progress (in steps) with previews and stops early when cancelled."""

    def __init__(self):
        self.started = threading.Event()

    def exemplars(self, genre):
        return [{"id": "train_00001", "title": "Alpha", "year": "2001", "genres": ["Comedy", "Romance"]}]

    def check_inputs(self, *, genre=None, engine="fast", steps=None):
        if engine == "quality" and not 1 <= float(steps) <= 500:
            raise InvalidArgumentError(f"Steps must be a whole number from 1 to 500, got {steps}.")
        return {}

    def transfer(self, content, genre, *, engine, strength, preserve_color, size, style_images, steps, fit, progress,
                 cancel, clean=True):
        w, h = (int(v) for v in size.split("x"))
        for i in range(steps):
            if cancel is not None and cancel.is_set():
                return Image.new("RGB", (w, h), (0, 0, 255))  # partial result
            if progress is not None:
                progress(Steps(i + 1, steps), Image.new("RGB", (w, h), (i, 0, 0)) if i % 5 == 0 else None)
            self.started.set()
            time.sleep(0.01)
        out = Image.new("RGB", (w, h), (0, 255, 0))
        out.info["poster_studio_notes"] = ["Your 300x200 picture was centre-cropped to the 2:3 poster shape."]
        return out


def test_quality_transfer_streams_previews_notes_and_cancels():
    import app

    fake = _FakeTransfer()
    demo = app.build_demo(_ready_services(transfer=fake))
    transfer = _fn(demo, "transfer")
    outs = list(transfer("pic.png", "Drama", "quality", 1.0, False, "256x384", 20, [], "crop"))
    assert len(outs) >= 3  # previews, then the result
    final, md, _ = outs[-1]
    with Image.open(final) as im:
        assert im.size == (256, 384) and im.convert("RGB").getpixel((0, 0)) == (0, 255, 0)
    assert "Exemplar posters for Drama" in md and "Alpha (2001) · *Comedy + Romance*" in md
    assert "ℹ️ Your 300x200 picture was centre-cropped" in md and "⏳" not in md
    # while it runs: the previous result goes at once, previews come in the result, the step count beside it
    assert outs[0][0] is None and outs[0][1].startswith("⏳ **Optimising (quality engine):** starting")
    previews = [o[0] for o in outs[1:-1] if isinstance(o[0], str)]
    assert previews and all(Path(p).name.startswith("preview-") for p in previews)
    steps_seen = [o[1].split("\n")[0] for o in outs[1:-1] if isinstance(o[1], str)]
    assert steps_seen and all("step " in t and " of 20 " in t and "elapsed" in t for t in steps_seen)
    # The Cancel button of the same session, while it runs: the partial result comes back, no error.
    fake.started.clear()
    cancel_fn = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "cancel_transfer")
    session = types.SimpleNamespace(session_hash="session-1")
    results = []
    t = threading.Thread(target=lambda: results.extend(
        transfer("pic.png", "Drama", "quality", 1.0, False, "256x384", 1000, [], "crop", request=session)))
    t.start()
    assert fake.started.wait(10)
    cancel_fn(types.SimpleNamespace(session_hash="another-session"))  # someone else's Cancel: no effect
    time.sleep(0.1)
    assert t.is_alive()
    cancel_fn(session)
    t.join(20)
    assert not t.is_alive()
    with Image.open(results[-1][0]) as im:
        assert im.convert("RGB").getpixel((0, 0)) == (0, 0, 255)  # the partial result


def test_user_style_images_listed_instead_of_exemplars():
    import app

    demo = app.build_demo(_ready_services(transfer=_FakeTransfer()))
    outs = list(_fn(demo, "transfer")("pic.png", "Drama", "fast", 1.0, False, "256x384", 2,
                                      ["/tmp/x/red.png", "/tmp/x/blue.png"]))
    md = outs[-1][1]
    assert md.startswith("**Style from your images:** red.png, blue.png") and "Exemplar posters" not in md


def _dependencies(demo) -> list[dict]:
    return demo.get_config_file()["dependencies"]


def test_long_jobs_show_their_previews_not_an_overlay():
    """The quality transfer's and the dream's previews must stay visible: no full progress overlay on their
    outputs (their own step line says how far they are)."""
    import app

    deps = {d["api_name"]: d for d in _dependencies(app.build_demo(U.Services())) if d.get("api_name")}
    for name in ("transfer", "dream"):
        assert deps[name]["show_progress"] == "minimal", name
    assert deps["generate"]["show_progress"] == "full"  # no previews there: the bar is the feedback


def test_a_failed_request_clears_its_outputs():
    """After an error the previous result must not stay under the message as if it were this request's."""
    import app

    deps = _dependencies(app.build_demo(U.Services()))
    for name in ("generate", "morph", "classify", "masks", "transfer", "dream"):
        main = next(d for d in deps if d.get("api_name") == name)
        cleanup = [d for d in deps if d.get("trigger_after") == main["id"] and d.get("trigger_only_on_failure")]
        assert cleanup, f"nothing clears /{name}'s outputs when it fails"
        assert set(cleanup[0]["outputs"]) == set(main["outputs"]), name


def test_a_new_picture_clears_the_previous_principal_masks():
    import app

    demo = app.build_demo(U.Services())
    masks = next(d for d in _dependencies(demo) if d.get("api_name") == "masks")
    image_id = masks["inputs"][0]
    cleared = [d for d in _dependencies(demo) if [image_id, "change"] in [list(t) for t in d["targets"]]]
    assert any(set(masks["outputs"]) <= set(d["outputs"]) for d in cleared)


def test_a_clamped_slider_says_why():
    """The browser turns a typed 0 into the slider's 1 without a word; the release event says what the API says."""
    import app

    class Gen(_FakeGenerator):
        def check_inputs(self, *, n=None, steps=None):
            if n is not None and not 1 <= float(n) <= 16:
                raise InvalidArgumentError(f"Count must be a whole number from 1 to 16, got {n}.")
            return {}

    demo = app.build_demo(_ready_services(generator=Gen(), transfer=_FakeTransfer()))
    released = {f.inputs[0].label: f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "released"}
    assert {"How many posters", "Frames", "Steps (quality engine)", "Steps (genre dream)"} <= set(released)
    with pytest.warns(UserWarning, match=r"Count must be a whole number from 1 to 16, got 0\. The slider was set to 1"):
        released["How many posters"](0)
    with pytest.warns(UserWarning, match=r"got 500\. The slider was set to 16\."):
        released["How many posters"](500)
    with pytest.warns(UserWarning, match=r"Steps \(quality engine\) goes from 10 to 500 here, got 5\. The slider was"):
        released["Steps (quality engine)"](5)  # the service would take 5: the slider's own range is the reason
    with pytest.warns(UserWarning, match=r"Steps must be a whole number from 1 to 500, got 0\."):
        released["Steps (quality engine)"](0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        released["How many posters"](8)  # in range: nothing to say


def test_progress_text_counts_steps_and_time():
    t0 = time.monotonic() - 65
    assert U.progress_text("Dreaming", Steps(40, 160), t0) == "⏳ **Dreaming:** step 40 of 160 (25%) · 1:05 elapsed"
    assert U.progress_text("Dreaming", 0.5, t0).startswith("⏳ **Dreaming:** 50% · 1:0")
    assert U.progress_text("Dreaming", None, time.monotonic()) == "⏳ **Dreaming:** starting · 0:00 elapsed"
    assert Steps(7, 5) == 1.0 and Steps(7, 5).done == 5 and float(Steps(1, 4)) == 0.25


def test_run_timed_moves_the_bar_and_learns_the_time():
    calls = []
    timer = U.WorkTimer({"400x600": 0.2})
    out = U.run_timed(lambda: time.sleep(0.6) or "posters", lambda f, desc: calls.append((f, desc)), "Generating",
                      timer, "400x600", 2, every_s=0.05)
    assert out == "posters"
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.05 and fractions[-1] > 0.5 and max(fractions) <= 0.95
    assert calls[-1][1].startswith("Generating · ")
    assert 0.2 < timer.expected_s("400x600", 1) < 0.3  # half the old guess (0.2), half the new (0.3 a poster)

    def broken():
        raise InvalidArgumentError("Count must be a whole number from 1 to 16, got 0.")

    with pytest.raises(InvalidArgumentError, match="Count must be"):
        U.run_timed(broken, lambda f, desc: None, "Generating", timer, "native", "zero")


# ------------------------------------------------------------------------------------------ run_watched
def _endless_job(stop: threading.Event, stopped: threading.Event):
    def job(progress=None):
        i = 0
        while not stop.is_set():
            i += 1
            progress(min(i / 1000, 1.0), None)
            time.sleep(0.01)
        stopped.set()
        return "partial"
    return job


def test_run_watched_yields_progress_heartbeats_and_the_result():
    def job(progress=None):
        progress(0.5, "preview")
        time.sleep(0.35)
        return "result"

    items = list(U.run_watched(job, threading.Event(), stall_s=5, heartbeat_s=0.1))
    assert items[0] == ("progress", (0.5, "preview")) and items[-1] == ("done", "result")
    assert ("heartbeat", None) in items[1:-1]

    def fails(progress=None):
        raise InvalidArgumentError("bad")

    with pytest.raises(InvalidArgumentError, match="bad"):
        list(U.run_watched(fails, threading.Event()))


def test_run_watched_cancels_when_the_consumer_stalls():
    cancel, stopped = threading.Event(), threading.Event()
    items = U.run_watched(_endless_job(cancel, stopped), cancel, stall_s=0.2, heartbeat_s=0.05)
    assert next(items)[0] == "progress"
    assert not cancel.is_set()
    time.sleep(0.5)  # the client is gone: nobody takes the updates
    assert cancel.wait(2) and stopped.wait(2)  # the job saw the cancel and stopped
    items.close()


def test_run_watched_cancels_when_closed_early():
    cancel, stopped = threading.Event(), threading.Event()
    items = U.run_watched(_endless_job(cancel, stopped), cancel, stall_s=60, heartbeat_s=0.05)
    for _ in range(3):
        assert next(items)[0] == "progress"
    assert not cancel.is_set()
    items.close()  # e.g. Gradio closes the handler when the request is cancelled
    assert cancel.is_set() and stopped.wait(2)


# ------------------------------------------------------------------------------------------ busy uploads
def _asgi_post(middleware, path: str, body_chunks: list[bytes]) -> tuple[list[dict], list[str]]:
    import asyncio

    sent, inner_calls = [], []
    chunks = list(body_chunks)

    async def receive():
        data = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": data, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    async def run():
        scope = {"type": "http", "method": "POST", "path": path, "app": middleware.fake_app}
        await middleware(scope, receive, send)

    asyncio.run(run())
    return sent, chunks


def test_an_upload_is_refused_at_once_while_the_queue_is_full():
    """A client uploads a request's files before joining the queue: while the queue is full the upload gets the
    503 "queue is full" at once, and Gradio's upload route (parsing, writing, hashing) never sees it."""
    import app

    assert any(m.cls is U.RefuseUploadsWhenQueueFull for m in app.launch_kwargs()["app_kwargs"]["middleware"])
    reached = []

    async def gradio_routes(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    class Queue:
        max_size = 2

        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

    mw = U.RefuseUploadsWhenQueueFull(gradio_routes)
    mw.fake_app = types.SimpleNamespace(get_blocks=lambda: types.SimpleNamespace(_queue=Queue(2)))
    sent, left = _asgi_post(mw, "/gradio_api/upload", [b"--boundary", b"...a picture...", b"--boundary--"])
    assert reached == [] and left == []  # body drained, never parsed
    assert sent[0]["status"] == 503 and sent[1]["body"].decode() == U.QUEUE_FULL_TEXT
    mw.fake_app = types.SimpleNamespace(get_blocks=lambda: types.SimpleNamespace(_queue=Queue(1)))
    sent, _ = _asgi_post(mw, "/gradio_api/upload", [b"x"])
    assert reached == ["/gradio_api/upload"] and sent[0]["status"] == 200  # room in the queue: Gradio handles it
    mw.fake_app = types.SimpleNamespace(get_blocks=lambda: types.SimpleNamespace(_queue=Queue(5)))
    _asgi_post(mw, "/gradio_api/queue/join", [b"{}"])
    assert reached[-1] == "/gradio_api/queue/join"  # the join itself: Gradio's own "queue full" answer


def test_latent_generate_reports_steps_and_stop_guiding_marks_the_captions():
    """The latent engine's run goes through the service's step reports (the bar says "step i of n"), and a run
    whose guidance was stopped says so in its captions instead of the steps asked for."""
    import app
    from poster_studio.progress import Steps

    class Latent(_FakeGenerator):
        engines, default_engine = ("latent", "instant"), "latent"
        calls: list = []

        def check_inputs(self, engine=None):
            return {"engine": (engine or "latent").lower()}

        def generate(self, genres, n, seed, truncation, size, engine=None, guidance=0, progress=None, cancel=None):
            self.calls.append((engine, guidance))
            for i in range(1, 4):
                progress(Steps(i, 3))
            if guidance >= 20:  # a visitor presses Stop guiding during a long run
                cancel.set()
            return [Image.new("RGB", (160, 240), (i, 0, 0)) for i in range(n)]

    bars = []
    demo = app.build_demo(_ready_services(generator=Latent()))
    fn = _fn(demo, "generate")
    out = fn(["Drama"], 2, 3, 1.0, "native", "", "", "", None, "latent", 10, progress=lambda f, desc="": bars.append(desc))
    assert [c for _, c in out] == ["#1 · seed 3 · Drama · guided 10 steps", "#2 · seed 3 · Drama · guided 10 steps"]
    assert any("step 3 of 3" in d for d in bars)
    out = fn(["Drama"], 1, 3, 1.0, "native", "", "", "", None, "latent", 25, progress=lambda f, desc="": None)
    assert out[0][1] == "#1 · seed 3 · Drama · guidance stopped early"
    # the API may spell the engine in any case: the tab takes the service's own name for it
    out = fn(["Drama"], 1, 3, 1.0, "native", "", "", "", None, "LATENT", 0, progress=lambda f, desc="": None)
    assert out[0][1] == "#1 · seed 3 · Drama"
    assert Latent.calls == [("latent", 10), ("latent", 25), ("latent", 0)]


def test_guidance_slider_follows_the_engine_and_the_classifier():
    from ui.generate_tab import VISITOR_GUIDANCE, guidance_setting

    class Guided(_FakeGenerator):
        guidance = object()

    slot = _ready_services(generator=Guided()).generator
    assert guidance_setting(slot, "latent") == {"value": VISITOR_GUIDANCE, "interactive": True}
    assert guidance_setting(slot, "instant") == {"value": 0, "interactive": False}
    unguided = _ready_services(generator=_FakeGenerator()).generator  # no classifier: guidance would be refused
    assert guidance_setting(unguided, "latent") == {"value": 0, "interactive": False}
