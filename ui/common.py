"""What the tabs share: the services (loaded once, in the background, each failing alone), turning library errors
into one-line messages, long jobs with previews and cancellation (run_watched, Cancels), widgets that hand raw
values to the services (which validate them), result files, example pictures and poster thumbnails, and ZeroGPU
support.

Nothing here knows a model: the tabs call the services of poster_studio directly.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import queue
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar

import gradio as gr

from poster_studio import genres as G
from poster_studio.classify import Classifier
from poster_studio.data import default_data_dir
from poster_studio.dream import Dreamer
from poster_studio.errors import PosterStudioError
from poster_studio.generate import PosterGenerator
from poster_studio.images import load_image
from poster_studio.transfer import GenreTransfer

log = logging.getLogger("poster_studio.app")

ROOT = Path(__file__).resolve().parents[1]
CONTENT_ENV = "POSTER_STUDIO_CONTENT"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
GENRE_CHOICES = [(G.DISPLAY_NAMES[g], g) for g in G.GENRES]

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ services
class ServiceSlot(Generic[T]):
    """One capability service, loaded at most once (thread-safe); `error` says why it is unavailable."""

    def __init__(self, title: str, loader: Callable[[], T], how_to_fix: str):
        self.title, self.loader, self.how_to_fix = title, loader, how_to_fix
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.service: Optional[T] = None
        self.error: Optional[str] = None

    @property
    def state(self) -> str:
        if not self._done.is_set():
            return "loading" if self._lock.locked() else "pending"
        return "ready" if self.service is not None else "failed"

    def load(self) -> Optional[T]:
        """Load the service now (or wait for a load in progress); returns it or None (see `error`)."""
        with self._lock:
            if self._done.is_set():
                return self.service
            t0 = time.perf_counter()
            try:
                self.service = self.loader()
            except PosterStudioError as exc:
                self.error = str(exc)
            except Exception as exc:  # a broken checkpoint or module must not take the other tabs down
                log.exception("loading the %s failed", self.title)
                self.error = f"{type(exc).__name__}: {exc}"
            if self.service is not None:
                log.info("%s loaded in %.1f s", self.title, time.perf_counter() - t0)
            else:
                log.warning("%s not available: %s", self.title, self.error)
            self._done.set()
            return self.service

    def get(self) -> T:
        """The service, loading it if needed; PosterStudioError with the reason when it is unavailable."""
        service = self.load()
        if service is None:
            raise PosterStudioError(f"The {self.title} model is not available: {self.error}")
        return service

    def status_markdown(self) -> str:
        """Empty when ready; else a Markdown note saying why the tab cannot work (or that it is loading)."""
        if self.state == "ready":
            return ""
        if self.state in ("pending", "loading"):
            return f"⏳ Loading the {self.title} model…"
        fix = "" if "train" in (self.error or "").lower() else f"\n\n{self.how_to_fix}"
        return (f"### ⚠️ This tab is unavailable\n\n**Model not available:** {self.error}{fix}\n\n"
                "_The other tabs keep working._")


def _hub_hint(name: str, train: str) -> str:
    return f"Train it with `{train}` or set `POSTER_STUDIO_HUB_REPO` to a Hub repo that holds `{name}/`."


class Services:
    """The app's services; `start_background()` loads them in a daemon thread so the server is up at once."""

    def __init__(self):
        self.generator: ServiceSlot[PosterGenerator] = ServiceSlot(
            "poster generator", PosterGenerator.load,
            _hub_hint("generator", "python train/train_generator.py --data ../shared/data/posters"))
        self.classifier: ServiceSlot[Classifier] = ServiceSlot(
            "genre classifier", Classifier.load,
            _hub_hint("classifier", "python train/train_classifier.py --data ../shared/data/posters"))
        self.transfer: ServiceSlot[GenreTransfer] = ServiceSlot(
            "genre transfer", GenreTransfer.load,
            _hub_hint("transfer", "python train/train_transfer.py` and `python train/build_exemplars.py"))
        self.dream: ServiceSlot[Dreamer] = ServiceSlot(
            "dream", lambda: Dreamer(self.classifier.get()),
            _hub_hint("classifier", "python train/train_classifier.py --data ../shared/data/posters"))
        self._thread: Optional[threading.Thread] = None

    @property
    def slots(self) -> tuple[ServiceSlot, ...]:
        return (self.generator, self.classifier, self.transfer, self.dream)

    def start_background(self) -> threading.Thread:
        if self._thread is None:
            self._thread = threading.Thread(target=self.load_all, name="poster-studio-loader", daemon=True)
            self._thread.start()
        return self._thread

    def load_all(self) -> None:
        for slot in (self.classifier, self.generator, self.transfer, self.dream):
            slot.load()


def status_markdown(slot: ServiceSlot) -> gr.Markdown:
    text = slot.status_markdown()
    return gr.Markdown(text, visible=bool(text), elem_classes=["ps-status"])


def status_update(slot: ServiceSlot) -> gr.Markdown:
    slot.load()
    text = slot.status_markdown()
    return gr.Markdown(value=text, visible=bool(text))


# ------------------------------------------------------------------------------------------------ busy
QUEUE_FULL_TEXT = "Queue is full, try again in a few seconds."


class RefuseUploadsWhenQueueFull:
    """ASGI middleware: an upload (POST .../upload) that arrives while the request queue is full is answered at once
    with HTTP 503 (what Gradio answers a queue join then), its body drained unparsed: a client uploads a request's
    files before it joins the queue, so without this its "busy" answer waited for the multipart parsing, the file
    writes and the hashing of an upload whose request would be refused anyway (1.22 s at p95 under load)."""

    def __init__(self, app):
        self.app = app

    @staticmethod
    def queue_full(scope) -> bool:
        try:
            queue = scope["app"].get_blocks()._queue
        except (KeyError, AttributeError, ValueError):
            return False
        return queue is not None and queue.max_size is not None and len(queue) >= queue.max_size

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/upload") \
                and self.queue_full(scope):
            more = True
            while more:  # read what the client sends (cheap) so that it gets the answer, not a reset connection
                message = await receive()
                more = message["type"] == "http.request" and message.get("more_body", False)
            log.info("refused an upload: the queue is full")
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"2")]})
            await send({"type": "http.response.body", "body": QUEUE_FULL_TEXT.encode()})
            return
        await self.app(scope, receive, send)


# ------------------------------------------------------------------------------------------------ errors
_libc: Any = None
_last_trim = [0.0]


def release_memory(min_interval_s: float = 1.0) -> None:
    """Give freed heap pages back to the OS (glibc malloc_trim), at most once a second: keeps the server's RSS
    from ratcheting up after bursts of large image tensors."""
    global _libc
    now = time.monotonic()
    if now - _last_trim[0] < min_interval_s or _libc is False:
        return
    _last_trim[0] = now
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):
        _libc = False


def friendly(exc: Exception) -> gr.Error:
    """A user error's one-line text (logged as one line); anything else a generic message (traceback logged)."""
    if isinstance(exc, PosterStudioError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.info("refused: %s", text)
        return gr.Error(text, print_exception=False)
    log.error("unexpected error in a request", exc_info=exc)
    return gr.Error(f"Something went wrong ({type(exc).__name__}). The server is fine: try again or another input.",
                    print_exception=False)


@contextlib.contextmanager
def _as_user_errors():
    try:
        yield
    except gr.Error:
        raise
    except Exception as exc:
        raise friendly(exc) from None
    finally:
        release_memory()


def guarded(fn):
    """Wrap a handler (plain or streaming): library errors -> gr.Error with their message; memory handed back
    after each request."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            with _as_user_errors():
                yield from fn(*args, **kwargs)
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _as_user_errors():
            return fn(*args, **kwargs)
    return wrapper


def gpu(fn):
    """@spaces.GPU on a Hugging Face ZeroGPU Space (the `spaces` package is importable there), else `fn` as is."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)


# ------------------------------------------------------------------------------------------------ long jobs
STALL_S = 5.0       # no update taken for this long: the client is gone, the job stops
HEARTBEAT_S = 1.0


def run_watched(job, cancel: threading.Event, stall_s: float = STALL_S, heartbeat_s: float = HEARTBEAT_S):
    """Run `job(progress=cb)` in a worker thread; yield ("progress", (fraction, preview)) while it runs, a
    ("heartbeat", None) at least every `heartbeat_s`, and finally ("done", result) or re-raise its error. When the
    consumer stops taking items for `stall_s` (its client is gone) or closes this generator, `cancel` is set."""
    q: "queue.Queue[tuple[str, object]]" = queue.Queue()
    taken = [time.monotonic()]

    def cb(fraction: float, preview=None) -> None:
        if time.monotonic() - taken[0] > stall_s:
            cancel.set()
        q.put(("progress", (fraction, preview)))  # kept as sent: a progress.Steps also says step i of n

    def work():
        try:
            q.put(("done", job(progress=cb)))
        except BaseException as exc:  # handed to the consumer's thread
            q.put(("error", exc))

    threading.Thread(target=work, name="poster-studio-job", daemon=True).start()
    try:
        while True:
            try:
                kind, payload = q.get(timeout=heartbeat_s)
            except queue.Empty:
                kind, payload = "heartbeat", None
            if kind == "error":
                raise payload
            yield kind, payload
            taken[0] = time.monotonic()
            if kind == "done":
                return
    finally:
        cancel.set()  # closed early (cancelled, client gone): the worker stops at its next step


class WorkTimer:
    """How long a kind of work that reports no steps takes per unit (a poster at 400x600 ...), learnt from the
    last runs, so that its progress bar can move (`run_timed`)."""

    def __init__(self, seconds_per_unit: dict[str, float], default_s: float = 0.1):
        self._per = dict(seconds_per_unit)
        self._default = default_s
        self._lock = threading.Lock()

    def expected_s(self, kind: str, units: Any) -> float:
        try:
            n = max(1.0, float(units))
        except (TypeError, ValueError):
            n = 1.0
        with self._lock:
            return self._per.get(kind, self._default) * n

    def record(self, kind: str, units: Any, seconds: float) -> None:
        try:
            n = max(1.0, float(units))
        except (TypeError, ValueError):
            return
        with self._lock:
            old = self._per.get(kind, self._default)
            self._per[kind] = 0.5 * old + 0.5 * seconds / n


def run_timed(fn: Callable[[], T], progress, desc: str, timer: WorkTimer, kind: str, units: Any,
              every_s: float = 0.25) -> T:
    """`fn()` in a worker thread while the progress bar moves toward 95% over the time such work took before (an
    estimate: the service reports no steps), with the elapsed seconds; returns fn's result or raises its error."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def work():
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    t0 = time.monotonic()
    expected = max(0.05, timer.expected_s(kind, units))
    threading.Thread(target=work, name="poster-studio-timed", daemon=True).start()
    progress(0.05, desc=desc)
    while not done.wait(every_s):
        elapsed = time.monotonic() - t0
        progress(min(0.95, 0.05 + 0.9 * elapsed / expected), desc=f"{desc} · {elapsed:.0f} s")
    if "error" in box:
        raise box["error"]
    timer.record(kind, units, time.monotonic() - t0)
    return box["result"]


def progress_text(what: str, fraction: Optional[float], started: float) -> str:
    """One line for a long job's own progress display: the step count when the job says it (progress.Steps), else
    the percentage, and the time since `started` (time.monotonic()), which keeps counting between updates (Gradio's
    own timer restarts at every streamed update, and its overlay would hide the previews)."""
    elapsed = max(0.0, time.monotonic() - started)
    clock = f"{int(elapsed) // 60}:{int(elapsed) % 60:02d}"
    if fraction is None:
        where = "starting"
    elif getattr(fraction, "total", None):
        where = f"step {fraction.done} of {fraction.total} ({float(fraction):.0%})"
    else:
        where = f"{float(fraction):.0%}"
    return f"⏳ **{what}:** {where} · {clock} elapsed"


def run_reported(job, progress, desc: str, cancel: threading.Event) -> Any:
    """`job(progress=cb)` (a service that reports progress.Steps) in a worker thread while Gradio's bar shows its
    step count and the elapsed time; returns (its result, whether `cancel` was set when it finished: run_watched
    sets it afterwards, on closing) or raises its error."""
    started = time.monotonic()
    progress(0.0, desc=desc)
    for kind, payload in run_watched(job, cancel):
        if kind == "done":
            return payload, cancel.is_set()
        if kind == "progress":
            fraction = payload[0]
            where = f"step {fraction.done} of {fraction.total}" if getattr(fraction, "total", None) else ""
            progress(float(fraction), desc=f"{desc} · {where} · {time.monotonic() - started:.0f} s")


def preview_stream(job, cancel: threading.Event, what: str, started: float, every_s: float = 0.5):
    """run_watched's items as what a long job's tab shows: ("done", result); ("show", (preview or None, progress
    line)) for each preview and, between previews, about every `every_s`; else ("skip", None): the tab yields
    gr.skip()s, so every item is taken and a gone client is still noticed (run_watched's stall check)."""
    fraction, shown = None, 0.0
    for kind, payload in run_watched(job, cancel):
        if kind == "done":
            yield "done", payload
            return
        preview = None
        if kind == "progress":
            fraction, preview = payload
        if preview is None and time.monotonic() - shown < every_s:
            yield "skip", None
            continue
        shown = time.monotonic()
        yield "show", (preview, progress_text(what, fraction, started))


class Cancels:
    """One cancel event per session for a tab's long jobs: the handler `start`s one, the Cancel button sets it."""

    def __init__(self):
        self._events: dict[str, threading.Event] = {}

    def start(self, request) -> tuple[str, threading.Event]:
        key = getattr(request, "session_hash", None) or f"api-{uuid.uuid4().hex}"
        event = self._events[key] = threading.Event()
        return key, event

    def finish(self, key: str) -> None:
        self._events.pop(key, None)

    def cancel(self, request: gr.Request) -> None:
        event = self._events.get(getattr(request, "session_hash", None) or "")
        if event is not None:
            event.set()


# ------------------------------------------------------------------------------------------------ widgets
def raw(component):
    """Hand the API's / widget's value to the handler as sent: the service validates it and says what is wrong
    (Gradio would otherwise refuse out-of-range numbers and unknown choices with its own wording)."""
    component.preprocess = lambda payload: payload
    return component


def explain_clamping(slider: gr.Slider, slot: "ServiceSlot", check: Callable[[Any, Any], Any]) -> None:
    """The browser clamps a number typed into a slider to the slider's range without a word (0 becomes 1); say so,
    with the service's own message for that value (what the API answers: `check(service, value)` calls its
    check_inputs), or the slider's range where the service would take a value the slider cannot show."""
    lo, hi = slider.minimum, slider.maximum

    def released(value):
        try:
            v = float(value)
        except (TypeError, ValueError):
            return
        if lo <= v <= hi:
            return
        why = f"{slider.label} goes from {lo:g} to {hi:g} here, got {value!r}."
        if slot.service is not None:
            try:
                check(slot.service, value)
            except PosterStudioError as exc:
                why = str(exc).splitlines()[0]
        gr.Warning(f"{why} The slider was set to {min(max(v, lo), hi):g}.")

    # "release" carries the typed value: the browser clamps it right after sending it
    slider.release(released, slider, None, api_visibility="private", show_progress="hidden", concurrency_limit=None)


def clear_on_failure(event, outputs: Sequence[Any], values: Sequence[Any]) -> None:
    """When `event` fails, its outputs get `values` (empty): an error message must not sit above the previous
    request's result as if it were this one's."""
    event.failure(lambda: tuple(values) if len(values) > 1 else values[0], None, list(outputs),
                  api_visibility="private", queue=False, show_progress="hidden")


def image_input(label: str, **kwargs) -> gr.Image:
    """gr.Image handing the upload's path to the handler unopened, so poster_studio.images.load_image (bomb,
    corrupt, mode checks) gives the message instead of a PIL traceback inside Gradio's preprocessing."""
    comp = gr.Image(label=label, type="filepath", image_mode=None, sources=["upload", "clipboard", "webcam"],
                    **kwargs)
    original = comp.preprocess

    def preprocess(payload):
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        if getattr(payload, "path", None) and not url.startswith("data:"):
            return str(payload.path)
        try:
            return original(payload)
        except Exception as exc:
            raise gr.Error(f"The upload is not a usable image ({type(exc).__name__}).", print_exception=False) \
                from None

    comp.preprocess = preprocess
    return comp


def random_seed() -> int:
    return random.randint(0, 999_999)


def notes_markdown(notes: Sequence[str]) -> str:
    return "\n".join(f"ℹ️ {n}" for n in notes)


class OutputFiles:
    """Result images written once to uniquely named PNG files, handed to Gradio as paths.

    Gradio caches PIL outputs under a hash of their bytes with a fixed file name, so two requests producing the
    same image (same seed, same poster) write and serve the same file at the same time (a truncated download
    was seen under load). A unique file name per result avoids that race. Files older than `max_age_s` go."""

    def __init__(self, max_age_s: float = 1800.0):
        self.folder = Path(tempfile.mkdtemp(prefix="poster-studio-out-"))
        self.max_age_s = max_age_s
        self._last_purge = time.monotonic()
        self._lock = threading.Lock()

    def save(self, img, stem: str = "poster") -> str:
        path = self.folder / f"{stem}-{uuid.uuid4().hex[:12]}.png"
        img.save(path, "PNG", compress_level=3)
        self._purge()
        return str(path)

    def save_gif(self, frames: Sequence[Any], ms_per_frame: int = 160) -> str:
        """Ping-pong animated GIF of the frames."""
        seq = list(frames) + list(frames)[-2:0:-1]
        path = self.folder / f"morph-{uuid.uuid4().hex[:12]}.gif"
        seq[0].save(path, save_all=True, append_images=seq[1:], duration=ms_per_frame, loop=0)
        return str(path)

    def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        with self._lock:
            self._last_purge = now
            cutoff = time.time() - self.max_age_s
            for p in list(self.folder.glob("*.png")) + list(self.folder.glob("*.gif")):
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                except OSError:
                    pass


# ------------------------------------------------------------------------------------------------ files
def content_dir() -> Optional[Path]:
    """Folder of example content photos: $POSTER_STUDIO_CONTENT, else ../shared/data/content; None if absent."""
    env = os.environ.get(CONTENT_ENV)
    path = Path(env) if env else ROOT.parent / "shared" / "data" / "content"
    return path if path.is_dir() else None


def content_examples(limit: int = 6) -> list[str]:
    folder = content_dir()
    if folder is None:
        return []
    return [str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES][:limit]


def poster_thumbnail(poster_id: str, height: int = 240):
    """PIL thumbnail of a known poster when the data folder is there, else None."""
    folder = default_data_dir() / "images"
    if not poster_id or "/" in poster_id or "\\" in poster_id or not (folder / f"{poster_id}.jpg").is_file():
        return None
    try:
        img = load_image(folder / f"{poster_id}.jpg")
    except PosterStudioError:
        return None
    if img.height > height:
        img = img.resize((max(1, round(img.width * height / img.height)), height))
    return img


def thumbnails_available() -> bool:
    """Whether this server has the poster images (thumbnails); a Space without the data shows titles only."""
    return (default_data_dir() / "images").is_dir()


def poster_title(item: dict) -> str:
    title = str(item.get("title") or item.get("id") or "?")
    year = str(item.get("year") or "").strip()
    return f"{title} ({year})" if year else title


def poster_genres(item: dict) -> str:
    """The poster's own genres ("Comedy + Romance"), or "" when the item does not carry them."""
    return " + ".join(G.DISPLAY_NAMES.get(g, g) for g in item.get("genres") or ())


def poster_list_markdown(items: Sequence[dict], heading: str, score_key: Optional[str] = None,
                         score_label: str = "") -> str:
    if not items:
        return f"**{heading}:** none"
    lines = [f"**{heading}:**", ""]
    for i, it in enumerate(items, 1):
        extra = ""
        if score_key and it.get(score_key) is not None:
            extra = f" — {score_label}{float(it[score_key]):.3f}"
        genres = f" · *{poster_genres(it)}*" if poster_genres(it) else ""
        lines.append(f"{i}. {poster_title(it)}{genres}{extra}")
    return "\n".join(lines)


def poster_gallery(items: Sequence[dict]) -> list[tuple[Any, str]]:
    """(thumbnail, caption) pairs for the items whose poster image is available locally."""
    out = []
    for it in items:
        thumb = poster_thumbnail(str(it.get("id", "")))
        if thumb is not None:
            genres = poster_genres(it)
            out.append((thumb, f"{poster_title(it)} · {genres}" if genres else poster_title(it)))
    return out
