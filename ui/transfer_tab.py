"""The Genre transfer tab: restyle a picture as a genre's poster (fast AdaIN or quality Gatys with previews), or
translate a poster into a poster of another genre (the translate engine, when checkpoints/translator is installed).

A quality job runs in a worker thread and stops within seconds when its client is gone (ui.common.run_watched:
the handler streams a heartbeat at least every second; the job is cancelled when nobody takes an update for
STALL_S seconds, or when the handler is closed or cancelled: the Cancel button, a closed tab, a dropped API
client). The quality engine takes one job at a time and refuses a second at once, so fast transfers never wait
behind a job of minutes."""
from __future__ import annotations

import time

import gradio as gr

from poster_studio import genres as G
from poster_studio.errors import InvalidArgumentError
from poster_studio.images import image_notes
from poster_studio.transfer import GenreTransfer
from poster_studio.transfer.engines import DEFAULT_STEPS

from . import poster_control
from .common import GENRE_CHOICES, Cancels, OutputFiles, Services, clear_on_failure, content_examples, \
    explain_clamping, gpu, guarded, image_input, notes_markdown, poster_gallery, poster_list_markdown, progress_text, \
    preview_stream, raw, status_markdown, status_update, thumbnails_available

HOW = """
**Method:** neural style transfer from *exemplar posters* the classifier picked per genre: among the posters
it is most sure of, those whose restyled pictures it recognises best as the genre, blended while blending helps
(the "Neural Genre Transfer" study took the surest poster plus its nearest neighbours; this hits the genre more often).
**Fast** = AdaIN (Huang & Belongie 2017): VGG-19 features of your picture are renormalised to the genre's
blended exemplar statistics and a decoder trained here paints the result (about a second); the **clean-up**
(on by default) then re-fits it, window by window, to your picture's own light and edges (a guided filter), which
removes the decoder's dark blotches and outlines at the cost of some of its texture.
**Quality** = Gatys et al. multi-style optimisation on VGG-19 with the exemplars' blended Gram matrices
(minutes on a CPU, one at a time on this server; shows previews and can be cancelled). **Strength** mixes content
and style, **preserve colours** keeps your picture's colours. A picture that is not 2:3 is **cropped** to its
centre or **fitted** whole on a blurred backdrop of itself.
**Translate** (when installed) is not style transfer: one network trained here on posters (StarGAN-like: a
generator conditioned on the target genre, trained unpaired against a critic on frozen EfficientNet-Lite1 features
that judges each genre apart and also says which genre a poster looks like) **regrades** a *poster* as a poster of
another genre: region by region (cells of about a sixth of its width) it picks an affine colour transform, so the
layout, the edges and the lettering stay exactly where they are. It reads your picture at a small size (96x144)
and applies its grade to the full-size picture, so the picture keeps its detail; strength blends it with your
picture. It saw a few photo crops in training, but mostly posters.
**Bridge** (when the Generate tab's latent engine is installed) is not trained for this at all: it borrows the
poster generator. Your picture is encoded into the generator's latent space, the generator's genre-conditional
flow is run *backwards* to noise with no genre, then *forwards* again towards the chosen genre (Dual Diffusion
Implicit Bridges, Su et al. 2023); the generator's change is added to your picture. It changes more than a
colour grade (light, texture, shapes the generator associates with the genre) and works on any picture.
"""
EXAMPLE_GENRES = ["Horror_Thriller", "Comedy", "Animation", "Romance", "Action_Adventure", "Drama"]
QUALITY = "Optimising (quality engine)"


ENGINES = [("Fast (AdaIN, ~1 s)", "fast"), ("Quality (Gatys, minutes)", "quality")]
TRANSLATE = ("Translate (poster -> poster of another genre)", "translate")
BRIDGE = ("Bridge (through the poster generator, ~1 s)", "bridge")


def engine_choices(svc) -> list[tuple[str, str]]:
    """The engines offered: Translate only where this server has a trained translator, Bridge only where it has
    the latent generator (the API still takes both names and says why it cannot)."""
    return ENGINES + ([TRANSLATE] if getattr(svc, "translate_genres", ()) else []) \
        + ([BRIDGE] if getattr(svc, "bridge", None) is not None else [])


def translate_note(svc) -> str:
    """Which genres the translate engine reaches on this server ("" when it has none)."""
    reach = getattr(svc, "translate_genres", ())
    if not reach:
        return ""
    names = ", ".join(G.DISPLAY_NAMES[g] for g in reach)
    return f"**Translate** expects a *poster* and turns it into a poster of another genre; it reaches: {names}."


def exemplars_view(svc: GenreTransfer, genre, style_files, engine="fast") -> tuple[str, list]:
    eng = str(engine).strip().lower()
    if eng in ("translate", "bridge"):  # no exemplars; a bad genre gets the service's message
        try:
            g = G.parse_genre(genre) if genre else None
        except InvalidArgumentError:
            g = None
        how = ("the translate engine (a network trained on posters; no exemplars)" if eng == "translate" else
               "the bridge engine (the poster generator's genre flow, backwards then forwards; no exemplars)")
        return (f"**Translated to {G.DISPLAY_NAMES[g]}** by {how}." if g else ""), []
    if style_files:
        names = [str(f).rsplit("/", 1)[-1] for f in style_files]
        return "**Style from your images:** " + ", ".join(names), [(str(f), n) for f, n in zip(style_files, names)]
    if not genre:
        return "", []
    g = G.parse_genre(genre)
    items = svc.exemplars(g)  # each with its own genres where known: an exemplar may be Comedy + Romance
    return poster_list_markdown(items, f"Exemplar posters for {G.DISPLAY_NAMES[g]}"), poster_gallery(items)


def build(services: Services, files: OutputFiles):
    L = GenreTransfer
    cancels = Cancels()
    with gr.Tab("Genre transfer", id="transfer"):
        status = status_markdown(services.transfer)
        with gr.Row():
            with gr.Column(scale=1):
                content = image_input("Your picture", height=320, elem_id="tr-content")
                genre = raw(gr.Dropdown(GENRE_CHOICES, value="Horror_Thriller", label="Genre"))
                engine = raw(gr.Radio(engine_choices(services.transfer.service), value="fast", label="Engine"))
                note = gr.Markdown(translate_note(services.transfer.service), elem_id="tr-translate-note",
                                   visible=bool(translate_note(services.transfer.service)))
                strength = raw(gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Strength"))
                preserve = gr.Checkbox(value=False, label="Preserve my picture's colours")
                with gr.Row():
                    size = raw(gr.Dropdown(list(L.SIZES), value="384x576", label="Output size (WxH)",
                                           allow_custom_value=True))
                    steps = raw(gr.Slider(10, L.MAX_STEPS, value=150, step=10, label="Steps (quality engine)"))
                fit = raw(gr.Radio([("Crop to 2:3", "crop"), ("Fit whole picture", "fit")], value="crop",
                                   label="A picture that is not 2:3"))
                clean = gr.Checkbox(value=True, label="Clean up (fast engine: smooth away the decoder's dark "
                                    "blotches; off = more texture, more blotches)", elem_id="tr-clean")
                styles = gr.File(file_count="multiple", file_types=["image"],
                                 label="Your own style images (optional, replace the genre's exemplars)")
                with gr.Row():
                    button = gr.Button("Transfer", variant="primary", elem_id="tr-btn")
                    cancel_button = gr.Button("Cancel", variant="stop")
            with gr.Column(scale=1):
                result = gr.Image(label="Result", type="filepath", height=560, interactive=False, format="png",
                                  elem_id="tr-out")
                exemplars_md = gr.Markdown(label="Exemplars and notes", elem_id="tr-notes")
                # always there when this server has the poster images (no visibility updates: Gradio's lazy example
                # cache cannot build component updates); whole posters, never cropped, at most 4 a row
                exemplars_gallery = gr.Gallery(label="Style images used", columns=4, height="auto",
                                               fit_columns=False, visible=thumbnails_available(),
                                               object_fit="contain", allow_preview=True, elem_id="tr-exemplars")
                poster_title, poster_seed, poster_button, poster_out = poster_control.build("tr")
        pics = content_examples()
        if pics:  # a fast transfer each, computed on first click and cached (a first visitor does not wait)
            gr.Examples([[p, EXAMPLE_GENRES[i % len(EXAMPLE_GENRES)]] for i, p in enumerate(pics)],
                        inputs=[content, genre], outputs=[result, exemplars_md, exemplars_gallery],
                        fn=lambda picture, genre: (yield from transfer(picture, genre, "fast", 1.0, False, "384x576",
                                                                      DEFAULT_STEPS, [])),
                        cache_examples=True, cache_mode="lazy", label="Example pictures")
        with gr.Accordion("How it works", open=False):
            gr.Markdown(HOW)

    @gpu
    @guarded
    def transfer(picture, genre, engine, strength, preserve_color, size, steps, style_files, fit="crop",
                 clean=True, request: gr.Request = None):
        svc = services.transfer.get()
        style_files = [getattr(f, "name", f) for f in (style_files or [])]
        md, thumbs = exemplars_view(svc, genre, style_files, engine)
        thumbs = thumbs or None  # plain values only (see exemplars_gallery)
        key, cancel = cancels.start(request)

        def job(progress=None):
            return svc.transfer(picture, genre, engine=engine, strength=strength, preserve_color=preserve_color,
                                size=size, steps=steps, style_images=style_files, fit=fit, progress=progress,
                                cancel=cancel, clean=clean)

        def done(img):
            notes = image_notes(img)
            return files.save(img, "transfer"), md + (f"\n\n{notes_markdown(notes)}" if notes else ""), thumbs

        try:
            if engine != "quality":  # a second or two: the previous result goes at once, the new one follows
                what = "Translating" if engine in ("translate", "bridge") else "Stylising (fast engine)"
                yield None, f"⏳ **{what}…**\n\n{md}", thumbs
                yield done(job())
                return
            # The previews show in the result as they come (Gradio's progress overlay is off for this event); the
            # step count and a steady elapsed time go above the exemplars, renewed about every second.
            started = time.monotonic()
            yield None, f"{progress_text(QUALITY, None, started)}\n\n{md}", thumbs
            for kind, payload in preview_stream(job, cancel, QUALITY, started):
                if kind == "done":
                    yield done(payload)
                    break
                if kind == "skip":
                    yield gr.skip(), gr.skip(), gr.skip()
                    continue
                preview, line = payload
                yield (files.save(preview, "preview") if preview is not None else gr.skip()), f"{line}\n\n{md}", \
                    gr.skip()
        finally:
            cancels.finish(key)

    outputs = [result, exemplars_md, exemplars_gallery]
    run = button.click(transfer, [content, genre, engine, strength, preserve, size, steps, styles, fit, clean],
                       outputs,
                       api_name="transfer", concurrency_id="transfer", concurrency_limit=2, show_progress="minimal")
    clear_on_failure(run, outputs, [None, "", None])
    poster_control.wire(poster_button, [result, genre, poster_title, poster_seed], poster_out, files,
                        "transfer result", "transfer_poster")
    explain_clamping(steps, services.transfer,
                     lambda svc, v: svc.check_inputs(genre=G.GENRES[0], engine="quality", steps=v))
    def cancel_transfer(request: gr.Request):
        cancels.cancel(request)

    cancel_button.click(cancel_transfer, None, None, api_visibility="private", queue=False)

    def refresh():
        status_md = status_update(services.transfer)  # loads the service (or says why it cannot)
        svc = services.transfer.service
        text = translate_note(svc)
        return [status_md, gr.Markdown(value=text, visible=bool(text)), gr.Radio(choices=engine_choices(svc))]

    return [status, note, engine], refresh
