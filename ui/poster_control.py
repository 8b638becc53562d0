""""Make it a poster": the small control the Genre transfer and Dream tabs put under their result: typography
(an invented title, tagline and credits, or the title typed) over the result in its genre's layout, by seed, as a
second picture, so both the picture and the poster can be downloaded. The library does the work
(poster_studio.generate.make_poster)."""
from __future__ import annotations

from typing import Sequence

import gradio as gr

from poster_studio.errors import InvalidArgumentError
from poster_studio.generate import PosterTypesetter, make_poster

from .common import OutputFiles, guarded, raw


def build(prefix: str):
    """The control's widgets: (title, seed, button, poster image)."""
    with gr.Accordion("🎬 Make it a poster", open=False, elem_id=f"{prefix}-poster"):
        with gr.Row(equal_height=True):
            title = raw(gr.Textbox("", label="Title (empty: invented)", max_length=PosterTypesetter.MAX_TITLE,
                                   scale=3, elem_id=f"{prefix}-poster-title"))
            seed = raw(gr.Number(value=0, precision=0, minimum=0, maximum=PosterTypesetter.MAX_SEED,
                                 label="Seed", scale=1))
        button = gr.Button("Make it a poster", variant="secondary", elem_id=f"{prefix}-poster-btn")
        poster = gr.Image(label="As a poster", type="filepath", interactive=False, format="png", height=420,
                          elem_id=f"{prefix}-poster-out")
    return title, seed, button, poster


def handler(files: OutputFiles, what: str):
    """fn(picture, genres, title, seed) -> the poster's file; `what` names the result to make first."""
    @guarded
    def poster(picture, genres, title, seed):
        if not picture:
            raise InvalidArgumentError(f"There is no {what} yet: make one first, then make it a poster.")
        genres = [genres] if isinstance(genres, str) else list(genres or [])
        return files.save(make_poster(picture, genres, title=title or "", seed=seed), "poster")
    return poster


def wire(button, inputs: Sequence, output, files: OutputFiles, what: str, name: str) -> None:
    """inputs: (result picture, genre or genres, title, seed); `name`: the event's (private) api name."""
    button.click(handler(files, what), list(inputs), output, api_name=name, api_visibility="private",
                 concurrency_id="poster", concurrency_limit=2)
