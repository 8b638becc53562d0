"""Poster Studio web app: the Generate, Classify, Genre transfer and Dream tabs (ui/) over the poster_studio services.

Run `python app.py` (http://127.0.0.1:7860; --host/--port, or $GRADIO_SERVER_NAME / $PORT / $GRADIO_SERVER_PORT as
on Hugging Face Spaces). The models load in a background thread, so the server is up in seconds; a tab whose
model cannot load says why while the others work. API endpoints: /generate, /morph, /classify, /heatmap, /masks,
/transfer, /dream.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Example results computed on first click are cached for this server process only: Gradio's default cache
# (.gradio/cached_examples/ under the working directory) outlives the models and code that made it.
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="poster-studio-examples-"))

import gradio as gr  # noqa: E402

from ui import classify_tab, dream_tab, generate_tab, transfer_tab  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from ui.common import OutputFiles, RefuseUploadsWhenQueueFull, Services, content_dir  # noqa: E402

ROOT = Path(__file__).resolve().parent
FAVICON = ROOT / "docs" / "favicon.png"
MAX_FILE_SIZE = "25mb"  # uploads above this are refused by the server before any decoding
# Waiting requests beyond this get an explicit "queue is full, try again" instead of a long wait.
QUEUE_MAX_SIZE = int(os.environ.get("POSTER_STUDIO_QUEUE_SIZE") or 8)
# An upload while the queue is full is refused at once (503), before Gradio parses and stores it.
MIDDLEWARE = [Middleware(RefuseUploadsWhenQueueFull)]
THEME = gr.themes.Soft(primary_hue="orange", secondary_hue="rose", neutral_hue="slate")
CSS = """
#ps-header h1 {margin-bottom: 0}
#ps-footer {text-align: center; opacity: 0.8; font-size: 0.9em}
.ps-status {border-left: 4px solid var(--color-accent); padding-left: 12px}
#clf-similar .caption-label, #tr-exemplars .caption-label, #gen-gallery .caption-label {font-size: 0.7em; padding: 1px 4px; opacity: 0.85}
/* Gradio's height="auto" gallery is a box of at most 55vh that scrolls: 16 posters (32 with titles) show whole and
   the page scrolls instead; the exemplars take the room their posters need */
#gen-gallery .grid-wrap, #clf-masks .grid-wrap {max-height: none}
#tr-exemplars .grid-wrap {max-height: none; min-height: 0}
/* previews of a running quality transfer or dream stay visible: Gradio's progress layer over them is see-through
   and lets clicks through to the picture */
#tr-out > .wrap, #dream-out > .wrap {background: transparent !important; pointer-events: none}
"""


def build_demo(services: Services | None = None) -> gr.Blocks:
    """The whole UI (not launched); demo.services holds the services."""
    services = services or Services()
    files = OutputFiles()
    with gr.Blocks(title="Poster Studio", delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# 🎬 Poster Studio\nGenerate new movie posters by genre, find out which genres a poster "
                    "speaks, restyle any picture as a genre's poster, and run the classifier backwards.",
                    elem_id="ps-header")
        with gr.Tabs():
            tabs = [tab.build(services, files) for tab in (generate_tab, classify_tab, transfer_tab, dream_tab)]
        gr.Markdown("Poster Studio · models and metrics in the model cards under `checkpoints/` · "
                    "[Use via API](?view=api) · training data: research posters, not redistributed",
                    elem_id="ps-footer")
        demo.load(lambda: [u for _, refresh in tabs for u in refresh()], None, [c for comps, _ in tabs for c in comps],
                  api_visibility="private", concurrency_limit=None, show_progress="hidden")
    demo.services = services
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    return demo


def launch_kwargs() -> dict:
    """Everything `demo.launch` needs besides host/port (shared by main(), the tests and the benchmarks)."""
    return dict(max_file_size=MAX_FILE_SIZE, favicon_path=str(FAVICON) if FAVICON.is_file() else None,
                theme=THEME, css=CSS, footer_links=["api", "gradio", "settings"], show_error=False,
                allowed_paths=[str(content_dir())] if content_dir() else [],
                app_kwargs={"middleware": MIDDLEWARE})


def tune_process() -> None:
    """One torch thread per request ($POSTER_STUDIO_TORCH_THREADS): the tabs run concurrently on few cores, and
    multi-threaded kernels on busy cores wait for their slowest thread. Two glibc malloc arenas keep RSS from
    growing with Gradio's worker threads."""
    import ctypes

    import torch

    torch.set_num_threads(max(1, int(os.environ.get("POSTER_STUDIO_TORCH_THREADS") or 1)))
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Poster Studio web app")
    p.add_argument("--host", default=None, help="interface to bind (default $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default $PORT, $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--lazy", action="store_true", help="load each model on first use instead of at start")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    tune_process()
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = args.port or int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    services = Services()
    demo = build_demo(services)
    if not args.lazy:
        services.start_background()
    demo.launch(server_name=host, server_port=port, **launch_kwargs())


if __name__ == "__main__":
    main()
