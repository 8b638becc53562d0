"""Glue between the app (app.py) and the library, kept free of Gradio so it can be tested on its own.

- `ServiceSlot` / `Services`: each capability service (classifier, generator, transfer) loads once, lazily or
  in a background thread, and remembers why it could not load (missing module, CheckpointError ...).
- Input checks for numbers coming from widgets or API clients (NaN, negative, out of range).
- `run_generate`, `run_morph`, `run_classify`, `run_heatmap`, `run_transfer`: call the services and shape
  their results for the widgets (captions, Markdown, thumbnails).
- `content_examples()` and `poster_thumbnail()`: optional files from the data folders, never required.
"""
from __future__ import annotations

import importlib
import logging
import os
import queue
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from . import genres as G
from .checks import check_float, check_int, check_truncation
from .errors import CheckpointError, InvalidArgumentError, PosterStudioError

log = logging.getLogger("poster_studio.app")

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTENT_ENV = "POSTER_STUDIO_CONTENT"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_COUNT = 16
MAX_SEED = 2**31 - 1
MAX_MORPH_STEPS = 16
TRANSFER_SIZES = ("256x384", "384x576", "512x768")


# ------------------------------------------------------------------------------------------------ services
class ServiceSlot:
    """One capability service, loaded at most once (thread-safe); `error` says why it is unavailable."""

    def __init__(self, key: str, title: str, module: str, attr: str, how_to_fix: str):
        self.key, self.title, self.module, self.attr, self.how_to_fix = key, title, module, attr, how_to_fix
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.service: Any = None
        self.error: Optional[str] = None
        self.load_seconds: Optional[float] = None

    @property
    def state(self) -> str:
        if not self._done.is_set():
            return "loading" if self._lock.locked() else "pending"
        return "ready" if self.service is not None else "failed"

    def load(self) -> Any:
        """Load the service now (or wait for a load in progress); returns it or None (see `error`)."""
        with self._lock:
            if self._done.is_set():
                return self.service
            t0 = time.perf_counter()
            try:
                try:
                    module = importlib.import_module(self.module)
                except ModuleNotFoundError as exc:
                    if exc.name and self.module.startswith(exc.name):
                        raise CheckpointError(f"the module {self.module} is not part of this build yet") from None
                    raise
                cls = getattr(module, self.attr)
                self.service = cls.load()
            except PosterStudioError as exc:
                self.error = str(exc)
            except Exception as exc:  # a broken module must not take the other tabs down
                log.exception("loading %s failed", self.key)
                self.error = f"{type(exc).__name__}: {exc}"
            self.load_seconds = time.perf_counter() - t0
            if self.service is not None:
                log.info("%s loaded in %.1f s", self.key, self.load_seconds)
            else:
                log.warning("%s not available: %s", self.key, self.error)
            self._done.set()
            return self.service

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._done.wait(timeout)

    def get(self) -> Any:
        """The service, loading it if needed; CheckpointError with the reason when it is unavailable."""
        service = self.load()
        if service is None:
            raise CheckpointError(f"The {self.title} model is not available: {self.error}")
        return service

    def status_markdown(self) -> str:
        """Empty when ready; else a Markdown note saying why the tab cannot work (or that it is loading)."""
        state = self.state
        if state == "ready":
            return ""
        if state in ("pending", "loading"):
            return f"⏳ Loading the {self.title} model…"
        fix = "" if "train" in (self.error or "").lower() else f"\n\n{self.how_to_fix}"
        return (f"### ⚠️ This tab is unavailable\n\n**Model not available:** {self.error}{fix}\n\n"
                "_The other tabs keep working._")


class Services:
    """The three services of the app; `start_background()` loads them in a daemon thread."""

    def __init__(self):
        self.classifier = ServiceSlot(
            "classifier", "genre classifier", "poster_studio.classifier", "Classifier",
            "Train it with `python train/train_classifier.py --data ../shared/data/posters` "
            "or set `POSTER_STUDIO_HUB_REPO` to a Hub repo that holds `classifier/`.")
        self.generator = ServiceSlot(
            "generator", "poster generator", "poster_studio.generator", "PosterGenerator",
            "Train it with `python train/train_gan.py --data ../shared/data/posters` "
            "or set `POSTER_STUDIO_HUB_REPO` to a Hub repo that holds `generator/`.")
        self.transfer = ServiceSlot(
            "transfer", "genre transfer", "poster_studio.transfer", "GenreTransfer",
            "Build it with `python train/build_exemplars.py` and `python train/train_transfer.py` "
            "or set `POSTER_STUDIO_HUB_REPO` to a Hub repo that holds `transfer/`.")
        self._thread: Optional[threading.Thread] = None

    @property
    def slots(self) -> tuple[ServiceSlot, ...]:
        return (self.generator, self.classifier, self.transfer)

    def start_background(self) -> threading.Thread:
        if self._thread is None:
            def load_all():
                for slot in (self.classifier, self.generator, self.transfer):
                    slot.load()
            self._thread = threading.Thread(target=load_all, name="poster-studio-loader", daemon=True)
            self._thread.start()
        return self._thread

    def load_all(self) -> None:
        for slot in self.slots:
            slot.load()


# ------------------------------------------------------------------------------------------------ checks
def random_seed() -> int:
    return random.randint(0, 999_999)


# ------------------------------------------------------------------------------------------------ outputs
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
        import uuid

        path = self.folder / f"{stem}-{uuid.uuid4().hex[:12]}.png"
        img.save(path, "PNG", compress_level=3)
        self._purge()
        return str(path)

    def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        with self._lock:
            self._last_purge = now
            cutoff = time.time() - self.max_age_s
            for p in self.folder.glob("*.png"):
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                except OSError:
                    pass


# ------------------------------------------------------------------------------------------------ files
def content_dir() -> Optional[Path]:
    """Folder of example content photos: $POSTER_STUDIO_CONTENT, else ../shared/data/content; None if absent."""
    env = os.environ.get(CONTENT_ENV)
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "content"
    return path if path.is_dir() else None


def content_examples(limit: int = 6) -> list[str]:
    folder = content_dir()
    if folder is None:
        return []
    return [str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES][:limit]


def poster_images_dir() -> Optional[Path]:
    """images/ of the poster data folder ($POSTER_STUDIO_DATA, else ../shared/data/posters) if present."""
    from .data import default_data_dir

    folder = default_data_dir() / "images"
    return folder if folder.is_dir() else None


def poster_thumbnail(poster_id: str, height: int = 240):
    """PIL thumbnail of a known poster when the data folder is there, else None."""
    folder = poster_images_dir()
    if folder is None or not poster_id or "/" in poster_id or "\\" in poster_id:
        return None
    path = folder / f"{poster_id}.jpg"
    if not path.is_file():
        return None
    try:
        from .images import load_image

        img = load_image(path)
    except PosterStudioError:
        return None
    if img.height > height:
        img = img.resize((max(1, round(img.width * height / img.height)), height))
    return img


def _title(item: dict) -> str:
    title = str(item.get("title") or item.get("id") or "?")
    year = str(item.get("year") or "").strip()
    return f"{title} ({year})" if year else title


def poster_list_markdown(items: Sequence[dict], heading: str, score_key: Optional[str] = None,
                         score_label: str = "") -> str:
    if not items:
        return f"**{heading}:** none"
    lines = [f"**{heading}:**", ""]
    for i, it in enumerate(items, 1):
        extra = ""
        if score_key and it.get(score_key) is not None:
            extra = f" — {score_label}{float(it[score_key]):.3f}"
        lines.append(f"{i}. {_title(it)}{extra}")
    return "\n".join(lines)


def poster_gallery(items: Sequence[dict]) -> list[tuple[Any, str]]:
    """(thumbnail, caption) pairs for the items whose poster image is available locally."""
    out = []
    for it in items:
        thumb = poster_thumbnail(str(it.get("id", "")))
        if thumb is not None:
            out.append((thumb, _title(it)))
    return out


# ------------------------------------------------------------------------------------------------ generate
def native_size_label(generator) -> str:
    try:
        w, h = generator.native_size
        return f"Native {w}x{h}"
    except Exception:
        return "Native"


def generate_args(genres: Optional[Sequence[str]], count: Any, seed: Any, truncation: Any,
                  size: str = "native") -> dict:
    """Checked keyword arguments for PosterGenerator.generate (InvalidArgumentError on bad input)."""
    if size not in ("native", "400x600"):
        raise InvalidArgumentError(f"Size must be 'native' or '400x600', got {size!r}.")
    return {"genres": G.parse_genres(genres), "n": check_int("Count", count, 1, MAX_COUNT),
            "seed": check_int("Seed", seed, 0, MAX_SEED),
            "truncation": check_truncation(truncation), "size": size}


def run_generate(generator, genres: Optional[Sequence[str]], count: Any, seed: Any, truncation: Any,
                 size: str = "native") -> list[tuple[Any, str]]:
    a = generate_args(genres, count, seed, truncation, size)
    images = generator.generate(a["genres"], n=a["n"], seed=a["seed"], truncation=a["truncation"], size=a["size"])
    what = " + ".join(G.DISPLAY_NAMES[g] for g in a["genres"]) if a["genres"] else "any genre"
    return [(img, f"#{i + 1} · seed {a['seed']} · {what}") for i, img in enumerate(images)]


def morph_args(genres_a, genres_b, seed_a: Any, seed_b: Any, steps: Any, size: str = "native",
               truncation: Any = 0.7) -> dict:
    if size not in ("native", "400x600"):
        raise InvalidArgumentError(f"Size must be 'native' or '400x600', got {size!r}.")
    return {"genres_a": G.parse_genres(genres_a), "genres_b": G.parse_genres(genres_b),
            "seed_a": check_int("Seed A", seed_a, 0, MAX_SEED), "seed_b": check_int("Seed B", seed_b, 0, MAX_SEED),
            "steps": check_int("Frames", steps, 2, MAX_MORPH_STEPS), "size": size,
            "truncation": check_truncation(truncation)}


def run_morph(generator, genres_a, genres_b, seed_a: Any, seed_b: Any, steps: Any,
              size: str = "native", truncation: Any = 0.7) -> tuple[list[tuple[Any, str]], str]:
    a = morph_args(genres_a, genres_b, seed_a, seed_b, steps, size, truncation)
    frames = generator.morph(a["genres_a"], a["genres_b"], seed_a=a["seed_a"], seed_b=a["seed_b"],
                             steps=a["steps"], size=a["size"], truncation=a["truncation"])
    gif = save_gif(frames)
    return [(f, f"{i + 1}/{len(frames)}") for i, f in enumerate(frames)], gif


def save_gif(frames: Sequence[Any], ms_per_frame: int = 160) -> str:
    """Ping-pong animated GIF of the frames in a temporary file; returns its path."""
    seq = list(frames) + list(frames)[-2:0:-1]
    fd, path = tempfile.mkstemp(prefix="poster-morph-", suffix=".gif")
    os.close(fd)
    seq[0].save(path, save_all=True, append_images=seq[1:], duration=ms_per_frame, loop=0)
    return path


# ------------------------------------------------------------------------------------------------ classify
def _heatmap_genre(prediction: dict, choice: Optional[str]) -> str:
    if not choice or choice == "top":
        return prediction["top"]
    return G.parse_genre(choice)


def run_classify(classifier, image: Any, heatmap_genre: Optional[str] = "top", k: int = 5) -> dict:
    """Prediction, one Grad-CAM overlay, similar posters; all shaped for the widgets."""
    from .images import load_image

    img = load_image(image)
    wanted = "top" if not heatmap_genre or heatmap_genre == "top" else G.parse_genre(heatmap_genre)
    pred = classifier.analyze(img, [wanted], k=k)  # one network pass for scores, heatmap and neighbours
    label = {G.DISPLAY_NAMES.get(g, g): float(p) for g, p in pred["scores"].items()}
    g = _heatmap_genre(pred, heatmap_genre)
    heat = pred["heatmaps"][g]
    similar = pred["similar"]
    note = "" if classifier.index is not None else "_This classifier checkpoint has no embeddings index._"
    labels = ", ".join(G.DISPLAY_NAMES.get(x, x) for x in pred["labels"]) or "none above its threshold"
    summary = f"**Predicted genres:** {labels}  \n**Heatmap:** evidence for {G.DISPLAY_NAMES.get(g, g)}"
    md = poster_list_markdown(similar, "Most similar known posters", "distance", "distance ") + (
        f"\n\n{note}" if note else "")
    return {"label": label, "heatmap": heat, "summary": summary, "similar_md": md,
            "similar_gallery": poster_gallery(similar), "prediction": pred}


def run_heatmap(classifier, image: Any, genre: Optional[str]) -> Any:
    maps = classifier.analyze(image, ["top" if not genre or genre == "top" else genre], k=0)["heatmaps"]
    return next(iter(maps.values()))


# ------------------------------------------------------------------------------------------------ transfer
def exemplars_for(transfer, genre: Optional[str], style_files: Sequence[str]) -> tuple[str, list]:
    if style_files:
        names = [Path(str(f)).name for f in style_files]
        return ("**Style from your images:** " + ", ".join(names)), []
    if not genre:
        return "", []
    g = G.parse_genre(genre)
    items = transfer.exemplars(g)
    return poster_list_markdown(items, f"Exemplar posters for {G.DISPLAY_NAMES[g]}"), poster_gallery(items)


def transfer_args(genre: Optional[str], engine: str, strength: Any, preserve_color: bool, size: Any, steps: Any,
                  style_files: Optional[Sequence[Any]] = None) -> dict:
    """Checked keyword arguments for GenreTransfer.transfer (besides content, progress, cancel)."""
    if engine not in ("fast", "quality"):
        raise InvalidArgumentError(f"Engine must be 'fast' or 'quality', got {engine!r}.")
    a = check_float("Strength", strength, 0.0, 1.0)
    if not isinstance(size, str) or size not in TRANSFER_SIZES:
        from .transfer import parse_size  # the library's own check (64..1024 per side)

        size = "x".join(str(v) for v in parse_size(size))
    n_steps = check_int("Steps", steps, 1, 1000) if engine == "quality" else None
    styles = [str(f) for f in (style_files or []) if f]
    g = G.parse_genre(genre) if genre else None
    if g is None and not styles:
        raise InvalidArgumentError("Choose a genre (or upload your own style images).")
    return {"genre": g, "engine": engine, "strength": a, "preserve_color": bool(preserve_color), "size": size,
            "steps": n_steps, "style_images": styles or None}


def run_transfer(transfer, content: Any, genre: Optional[str], engine: str, strength: Any, preserve_color: bool,
                 size: Any, steps: Any, style_files: Optional[Sequence[Any]] = None,
                 progress: Optional[Callable[[float, Any], None]] = None,
                 cancel: Optional[threading.Event] = None):
    """Validate and run one transfer; returns the PIL result."""
    if content is None:
        raise InvalidArgumentError("No content image: upload a picture first.")
    a = transfer_args(genre, engine, strength, preserve_color, size, steps, style_files)
    return transfer.transfer(content, a.pop("genre"), progress=progress, cancel=cancel, **a)


def transfer_with_previews(fn: Callable[..., Any], *, poll: float = 0.5) -> Iterator[tuple[str, Any]]:
    """Run `fn(progress=cb)` in a worker thread; yield ("progress", (fraction, preview)) while it runs and
    finally ("done", result) — or re-raise its exception — so a Gradio generator can stream previews."""
    q: "queue.Queue[tuple[str, Any]]" = queue.Queue()

    def cb(fraction: float, preview: Any = None) -> None:
        q.put(("progress", (float(fraction), preview)))

    def work():
        try:
            q.put(("done", fn(progress=cb)))
        except BaseException as exc:  # handed to the caller's thread
            q.put(("error", exc))

    threading.Thread(target=work, name="poster-studio-transfer", daemon=True).start()
    while True:
        try:
            kind, payload = q.get(timeout=poll)
        except queue.Empty:
            continue
        if kind == "error":
            raise payload
        yield kind, payload
        if kind == "done":
            return
