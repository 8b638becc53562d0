"""Poster Studio web app: three tabs (Generate, Classify, Genre transfer) wired to the poster_studio library.

Run `python app.py` (serves on http://127.0.0.1:7860; $PORT / $GRADIO_SERVER_PORT and
$GRADIO_SERVER_NAME or --host/--port as on Hugging Face Spaces). The models load once, in a background
thread, so the server is up in seconds; a tab whose model cannot load says why and the others keep working.
Main actions are API endpoints: /generate, /classify, /transfer (see README).
"""
from __future__ import annotations

import argparse
import functools
import inspect
import logging
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from poster_studio import genres as G  # noqa: E402
from poster_studio import ui_helpers as U  # noqa: E402
from poster_studio.errors import PosterStudioError  # noqa: E402
from poster_studio.images import load_image  # noqa: E402

log = logging.getLogger("poster_studio.app")

ROOT = Path(__file__).resolve().parent
TITLE = "Poster Studio"
FAVICON = ROOT / "docs" / "favicon.png"
MAX_FILE_SIZE = "25mb"          # uploads above this are refused by the server before any decoding
# Waiting requests beyond this get an explicit "queue is full, try again": a short queue keeps the wait of the
# accepted requests bounded (issue 7: p95 within 3x the single-request latency) instead of queueing everyone.
QUEUE_MAX_SIZE = int(os.environ.get("POSTER_STUDIO_QUEUE_SIZE") or 8)
CONCURRENCY = 1                 # running jobs per action group: generate / transfer (2 CPU cores, 1 thread each)
CLASSIFY_CONCURRENCY = int(os.environ.get("POSTER_STUDIO_CLASSIFY_CONCURRENCY") or 2)  # ~0.1 s single-threaded
THEME = gr.themes.Soft(primary_hue="orange", secondary_hue="rose", neutral_hue="slate")
CSS = """
#ps-header h1 {margin-bottom: 0}
#ps-footer {text-align: center; opacity: 0.8; font-size: 0.9em}
.ps-status {border-left: 4px solid var(--color-accent); padding-left: 12px}
"""
GENRE_CHOICES = [(G.DISPLAY_NAMES[g], g) for g in G.GENRES]
HEATMAP_CHOICES = [("Top genre", "top")] + GENRE_CHOICES

HOW_GENERATE = """
**Method:** a genre-conditioned GAN trained here on about 13,000 movie posters: a DCGAN-style generator with
conditional batch norm fed by a learned embedding of the ticked genres (a multi-hot condition, so
*Comedy + Romance* is a real request; none ticked = genres drawn from the training data's mix), trained
against a spectral-norm **projection discriminator** with the hinge loss, **DiffAugment** and an **EMA** of the
generator weights. Posters come out natively in the 2:3 shape at the size shown in *Size*; *400x600* is
Lanczos resampling of them (model card: `checkpoints/generator/README.md`). The **seed** makes results
reproducible; **truncation** below 1 scales the noise down: safer, less varied posters.
**Morph** interpolates (slerp of the noise, linear genre weights) between two genre sets or two seeds.
"""
HOW_CLASSIFY = """
**Method:** EfficientNet-Lite0 (ImageNet-pretrained) fine-tuned on the posters at their 2:3 shape, with a
sigmoid per genre (a poster can have several) and per-genre decision thresholds tuned on held-out posters.
The **heatmap** is Grad-CAM: where in the poster the evidence for the chosen genre was found. **Similar
posters** are the nearest neighbours in the model's 128-d embedding of the training posters.
"""
HOW_TRANSFER = """
**Method:** neural style transfer from *exemplar posters* the classifier picked per genre: among the posters
it is most sure of, those whose restyled pictures it recognises best as the genre, blended while blending helps
(the "Neural Genre Transfer" study took the surest poster plus its nearest neighbours; this hits the genre more often).
**Fast** = AdaIN (Huang & Belongie 2017): VGG-19 features of your picture are renormalised to the genre's
blended exemplar statistics and a decoder trained here paints the result (under 2 s).
**Quality** = Gatys et al. multi-style optimisation on VGG-19 with the exemplars' blended Gram matrices
(minutes on a CPU; shows previews and can be cancelled). **Strength** mixes content and style,
**preserve colours** keeps your picture's colours.
"""


# ---------------------------------------------------------------------------------------------- plumbing
def _friendly(exc: Exception) -> gr.Error:
    if isinstance(exc, PosterStudioError):
        return gr.Error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, print_exception=False)
    log.exception("unexpected error in a request")
    return gr.Error(f"Something went wrong ({type(exc).__name__}). The server is fine: try again or another input.",
                    print_exception=False)


_libc = None
_last_trim = [0.0]


def release_memory(min_interval_s: float = 1.0) -> None:
    """Give freed heap pages back to the OS (glibc malloc_trim), at most once a second: keeps the server's RSS
    from ratcheting up after bursts of large image tensors."""
    global _libc
    now = time.monotonic()
    if now - _last_trim[0] < min_interval_s:
        return
    _last_trim[0] = now
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):
        _libc = False


def guarded(fn):
    """User errors -> gr.Error with their one-line message; anything else -> a generic gr.Error (logged)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:
                raise _friendly(exc) from None
            finally:
                release_memory()
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _friendly(exc) from None
        finally:
            release_memory()
    return wrapper


def image_input(label: str, **kwargs) -> gr.Image:
    """gr.Image handing the upload's path to our handler unopened, so poster_studio.images.load_image (bomb,
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


def _classify_examples() -> list[str]:
    return [str(p) for p in sorted((ROOT / "docs").glob("example-poster-*.png"))][:6]


# ---------------------------------------------------------------------------------------------- the app
def build_demo(services: U.Services | None = None) -> gr.Blocks:
    """The whole UI (not launched). `services` defaults to lazily loaded ones; demo.services holds them."""
    services = services or U.Services()
    cancel_events: dict[str, threading.Event] = {}
    files = U.OutputFiles()

    def as_files(items, stem):
        return [(files.save(img, stem), caption) for img, caption in items]

    # -- handlers (thin: validation and work live in poster_studio.ui_helpers / the services)
    @guarded
    def generate(genres, count, seed, truncation, size, progress=gr.Progress()):
        U.generate_args(genres, count, seed, truncation, size)  # bad input first, whatever the model state
        gen = services.generator.get()
        progress(0.1, desc="Generating posters")
        return as_files(U.run_generate(gen, genres, count, seed, truncation, size), "poster")

    @guarded
    def morph(genres_a, genres_b, seed_a, seed_b, steps, size, truncation, progress=gr.Progress()):
        U.morph_args(genres_a, genres_b, seed_a, seed_b, steps, size, truncation)
        gen = services.generator.get()
        progress(0.1, desc="Interpolating")
        frames, gif = U.run_morph(gen, genres_a, genres_b, seed_a, seed_b, steps, size, truncation)
        return as_files(frames, "morph"), gif

    @guarded
    def classify(image, heatmap_genre, progress=gr.Progress()):
        img = load_image(image)  # bad input first: its message does not depend on the model
        clf = services.classifier.get()
        progress(0.1, desc="Classifying")
        r = U.run_classify(clf, img, heatmap_genre)
        gallery = r["similar_gallery"]
        return (r["label"], files.save(r["heatmap"], "heatmap"), r["summary"], r["similar_md"],
                gr.Gallery(value=gallery or None, visible=bool(gallery)))

    @guarded
    def heatmap(image, genre):
        if image is None:
            return None
        return files.save(U.run_heatmap(services.classifier.get(), image, genre), "heatmap")

    @guarded
    def transfer(content, genre, engine, strength, preserve_color, size, steps, style_files,
                 request: gr.Request, progress=gr.Progress()):
        if content is None:
            raise gr.Error("No picture: upload one (or pick an example) first.", print_exception=False)
        content = load_image(content)
        style_files = [getattr(f, "name", f) for f in (style_files or [])]
        U.transfer_args(genre, engine, strength, preserve_color, size, steps, style_files)
        svc = services.transfer.get()
        md, thumbs = U.exemplars_for(svc, genre, style_files)
        thumbs_update = gr.Gallery(value=thumbs or None, visible=bool(thumbs))
        key = getattr(request, "session_hash", None) or "api"
        cancel = cancel_events.setdefault(key, threading.Event())
        cancel.clear()
        run = functools.partial(U.run_transfer, svc, content, genre, engine, strength, preserve_color, size,
                                steps, style_files, cancel=cancel)
        try:
            if engine != "quality":
                progress(0.2, desc="Stylising (fast engine)")
                yield files.save(run(progress=None), "transfer"), md, thumbs_update
                return
            progress(0.0, desc="Optimising (quality engine)")
            for kind, payload in U.transfer_with_previews(run):
                if kind == "progress":
                    fraction, preview = payload
                    progress(fraction, desc="Optimising (quality engine)")
                    if preview is not None:
                        yield files.save(preview, "preview"), md, thumbs_update
                else:
                    if cancel.is_set():
                        gr.Warning("Cancelled: showing the result so far.")
                    yield files.save(payload, "transfer"), md, thumbs_update
        finally:
            cancel_events.pop(key, None)

    def cancel_transfer(request: gr.Request):
        ev = cancel_events.get(getattr(request, "session_hash", None) or "api")
        if ev is not None:
            ev.set()

    def refresh_status():
        for slot in services.slots:
            slot.load()
        gen = services.generator.service
        size_choices = [(U.native_size_label(gen) if gen else "Native", "native"), ("Upscaled 400x600", "400x600")]
        return (*(gr.Markdown(value=s.status_markdown(), visible=bool(s.status_markdown())) for s in services.slots),
                gr.Radio(choices=size_choices), gr.Radio(choices=size_choices))

    def status_md(slot: U.ServiceSlot) -> gr.Markdown:
        text = slot.status_markdown()
        return gr.Markdown(text, visible=bool(text), elem_classes=["ps-status"])

    # -- layout
    with gr.Blocks(title=TITLE, fill_width=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# 🎬 Poster Studio\nGenerate new movie posters by genre, find out which genres a poster "
                    "speaks, and restyle any picture as a genre's poster.", elem_id="ps-header")
        with gr.Tabs():
            # ------------------------------------------------------------------ Generate
            with gr.Tab("Generate", id="generate"):
                gen_status = status_md(services.generator)
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        gen_genres = gr.CheckboxGroup(GENRE_CHOICES, label="Genres (none ticked = any genre)",
                                                      elem_id="gen-genres")
                        gen_count = gr.Slider(1, U.MAX_COUNT, value=8, step=1, label="How many posters")
                        with gr.Row(equal_height=True):
                            gen_seed = gr.Number(value=0, precision=0, minimum=0, maximum=U.MAX_SEED, label="Seed",
                                                 scale=3)
                            dice = gr.Button("🎲 Random", scale=1, min_width=90, elem_id="gen-dice")
                        gen_trunc = gr.Slider(0.1, 1.0, value=0.7, step=0.05, label="Truncation (lower = safer, "
                                              "higher = more varied)")
                        gen_size = gr.Radio([("Native", "native"), ("Upscaled 400x600", "400x600")],
                                            value="native", label="Size")
                        gen_btn = gr.Button("Generate", variant="primary", elem_id="gen-btn")
                    with gr.Column(scale=3):
                        gen_gallery = gr.Gallery(label="Generated posters", columns=4, height="auto",
                                                 object_fit="contain", buttons=["download", "fullscreen"],
                                                 elem_id="gen-gallery", format="png")
                gr.Examples([[["Horror_Thriller"], 8, 7], [["Comedy", "Romance"], 8, 42], [["Animation"], 8, 3],
                             [["Documentary"], 4, 11]], inputs=[gen_genres, gen_count, gen_seed],
                            label="Try")
                with gr.Accordion("Morph between two genre sets or two seeds", open=False):
                    with gr.Row():
                        m_genres_a = gr.CheckboxGroup(GENRE_CHOICES, value=["Comedy"], label="From genres")
                        m_genres_b = gr.CheckboxGroup(GENRE_CHOICES, value=["Horror_Thriller"], label="To genres")
                    with gr.Row():
                        m_seed_a = gr.Number(value=0, precision=0, minimum=0, label="From seed")
                        m_seed_b = gr.Number(value=0, precision=0, minimum=0, label="To seed")
                        m_steps = gr.Slider(2, U.MAX_MORPH_STEPS, value=8, step=1, label="Frames")
                        m_size = gr.Radio([("Native", "native"), ("Upscaled 400x600", "400x600")],
                                          value="native", label="Size")
                    m_btn = gr.Button("Morph", variant="secondary")
                    m_strip = gr.Gallery(label="Morph strip", columns=8, rows=1, height="auto",
                                         object_fit="contain", format="png")
                    m_gif = gr.File(label="Animated GIF")
                with gr.Accordion("How it works", open=False):
                    gr.Markdown(HOW_GENERATE)

            # ------------------------------------------------------------------ Classify
            with gr.Tab("Classify", id="classify"):
                clf_status = status_md(services.classifier)
                with gr.Row():
                    with gr.Column(scale=1):
                        clf_image = image_input("Poster (drop, paste or use the webcam)", height=420,
                                                elem_id="clf-image")
                        clf_heat_genre = gr.Dropdown(HEATMAP_CHOICES, value="top", label="Heatmap for genre")
                        clf_btn = gr.Button("Classify", variant="primary", elem_id="clf-btn")
                    with gr.Column(scale=1):
                        clf_label = gr.Label(num_top_classes=len(G.GENRES), label="Genre probabilities",
                                             elem_id="clf-label")
                        clf_summary = gr.Markdown()
                    with gr.Column(scale=1):
                        clf_heat = gr.Image(label="Where the evidence is (Grad-CAM)", type="pil", height=420,
                                            interactive=False, format="png")
                with gr.Row():
                    clf_similar_md = gr.Markdown()
                    clf_similar = gr.Gallery(label="Similar posters", columns=5, height=260, visible=False,
                                             object_fit="contain")
                examples = _classify_examples()
                if examples:
                    gr.Examples([[e] for e in examples], inputs=[clf_image], label="Generated posters to try")
                with gr.Accordion("How it works", open=False):
                    gr.Markdown(HOW_CLASSIFY)

            # ------------------------------------------------------------------ Genre transfer
            with gr.Tab("Genre transfer", id="transfer"):
                tr_status = status_md(services.transfer)
                with gr.Row():
                    with gr.Column(scale=1):
                        tr_content = image_input("Your picture", height=320, elem_id="tr-content")
                        tr_genre = gr.Dropdown(GENRE_CHOICES, value="Horror_Thriller", label="Genre")
                        tr_engine = gr.Radio([("Fast (AdaIN, ~1 s)", "fast"), ("Quality (Gatys, minutes)", "quality")],
                                             value="fast", label="Engine")
                        tr_strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Strength")
                        tr_preserve = gr.Checkbox(value=False, label="Preserve my picture's colours")
                        with gr.Row():
                            tr_size = gr.Dropdown(list(U.TRANSFER_SIZES), value="384x576", label="Output size (WxH)")
                            tr_steps = gr.Slider(10, 500, value=150, step=10, label="Steps (quality engine)")
                        tr_styles = gr.File(file_count="multiple", file_types=["image"],
                                            label="Your own style images (optional, replace the genre's exemplars)")
                        with gr.Row():
                            tr_btn = gr.Button("Transfer", variant="primary", elem_id="tr-btn")
                            tr_cancel = gr.Button("Cancel", variant="stop")
                    with gr.Column(scale=1):
                        tr_out = gr.Image(label="Result", type="pil", height=560, interactive=False,
                                          format="png", elem_id="tr-out")
                        tr_ex_md = gr.Markdown()
                        tr_ex_gallery = gr.Gallery(label="Exemplars used", columns=5, height="auto", visible=False,
                                                   object_fit="contain")
                content = U.content_examples()
                if content:
                    genres_cycle = ["Horror_Thriller", "Comedy", "Animation", "Romance", "Action_Adventure",
                                    "Drama"]
                    gr.Examples([[p, genres_cycle[i % len(genres_cycle)]] for i, p in enumerate(content)],
                                inputs=[tr_content, tr_genre], label="Example pictures")
                with gr.Accordion("How it works", open=False):
                    gr.Markdown(HOW_TRANSFER)

        gr.Markdown("Poster Studio · models and metrics in the model cards under `checkpoints/` · "
                    "[Use via API](?view=api) · training data: research posters, not redistributed",
                    elem_id="ps-footer")

        # -- events
        dice.click(U.random_seed, outputs=gen_seed, api_visibility="private", queue=False)
        gen_btn.click(generate, [gen_genres, gen_count, gen_seed, gen_trunc, gen_size], gen_gallery,
                      api_name="generate", concurrency_id="generate")
        m_btn.click(morph, [m_genres_a, m_genres_b, m_seed_a, m_seed_b, m_steps, m_size, gen_trunc],
                    [m_strip, m_gif],
                    api_name="morph", concurrency_id="generate")
        clf_outputs = [clf_label, clf_heat, clf_summary, clf_similar_md, clf_similar]
        gr.on([clf_btn.click, clf_image.upload], classify, [clf_image, clf_heat_genre], clf_outputs,
              api_name="classify", concurrency_id="classify", concurrency_limit=CLASSIFY_CONCURRENCY)
        clf_heat_genre.input(heatmap, [clf_image, clf_heat_genre], clf_heat, api_name="heatmap",
                             concurrency_id="classify", concurrency_limit=CLASSIFY_CONCURRENCY)
        tr_btn.click(transfer, [tr_content, tr_genre, tr_engine, tr_strength, tr_preserve, tr_size, tr_steps,
                                tr_styles], [tr_out, tr_ex_md, tr_ex_gallery], api_name="transfer",
                     concurrency_id="transfer")
        tr_cancel.click(cancel_transfer, None, None, api_visibility="private", queue=False)
        demo.load(refresh_status, None, [gen_status, clf_status, tr_status, gen_size, m_size],
                  api_visibility="private", concurrency_limit=None, show_progress="hidden")

    demo.services = services
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def launch_kwargs() -> dict:
    """Everything `demo.launch` needs besides host/port (shared by main(), the tests and the benchmark)."""
    return dict(max_file_size=MAX_FILE_SIZE, favicon_path=str(FAVICON) if FAVICON.is_file() else None,
                theme=THEME, css=CSS, footer_links=["api", "gradio", "settings"], show_error=False,
                allowed_paths=[p for p in [str(U.content_dir())] if U.content_dir()])


def limit_malloc_arenas(n: int = 2) -> None:
    """glibc gives each of Gradio's worker threads its own malloc arena, which keeps RSS growing under concurrent
    load; a couple of arenas keep the growth bounded (no-op off glibc)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, n)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def set_torch_threads() -> int:
    """One intra-op thread per request by default ($POSTER_STUDIO_TORCH_THREADS to change): the tabs run
    concurrently on 2 cores, and multi-threaded kernels on busy cores wait for their slowest thread (measured on
    this CPU under load: classify 4.3 s with 2 threads vs 0.07 s with 1)."""
    import torch

    n = int(os.environ.get("POSTER_STUDIO_TORCH_THREADS") or 1)
    torch.set_num_threads(max(1, n))
    return n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Poster Studio web app")
    p.add_argument("--host", default=None, help="interface to bind (default $GRADIO_SERVER_NAME or 127.0.0.1; "
                                                  "0.0.0.0 to serve the network)")
    p.add_argument("--port", type=int, default=None, help="port (default $PORT, $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--lazy", action="store_true", help="load each model on first use instead of at start")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    limit_malloc_arenas()
    set_torch_threads()
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = args.port or int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    services = U.Services()
    demo = build_demo(services)
    if not args.lazy:
        services.start_background()
    demo.launch(server_name=host, server_port=port, **launch_kwargs())


if __name__ == "__main__":
    main()
