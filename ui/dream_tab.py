"""The Dream tab: run the poster classifier backwards (a genre dream from noise or from your picture, or deep dream
on your picture), with previews while it runs and a Cancel button that keeps the dream so far.

One handler, one service call (`Dreamer.dream`): no layer = genre dream; a layer = deep dream, steered toward the
ticked genres. Dreams run one at a time (their own queue), so the other tabs keep serving."""
from __future__ import annotations

import time

import gradio as gr

from poster_studio import genres as G
from poster_studio.dream import Dreamer
from poster_studio.dream.service import VGG_DREAM_LAYERS, classifier_layers
from poster_studio.images import image_notes

from . import poster_control
from .common import GENRE_CHOICES, Cancels, OutputFiles, Services, clear_on_failure, content_examples, \
    explain_clamping, gpu, guarded, image_input, notes_markdown, preview_stream, progress_text, random_seed, raw, \
    status_markdown, status_update

HOW = """
**Genre dream** (no layer): a picture is optimised until the project's poster classifier sees the ticked genres
(several genres: the weakest one is raised). The recipe that keeps such pictures readable instead of adversarial
noise (Olah et al., *Feature Visualization*, Distill 2017): the picture is a 1/f Fourier spectrum in decorrelated
colour space, every step shows the classifier randomly jittered, scaled, rotated and cropped views, and large
pictures are dreamt coarse to fine (octaves). With a picture, the dream starts from it.
**Deep dream** (a layer chosen): the classic of Mordvintsev et al. 2015: the picture is pushed to excite the chosen
layer (VGG-19 `relu…` layers, or the classifier's `classifier.block…` stages) over an octave pyramid with jitter;
tick genres to steer it toward them. VGG-19 layers take about 10x longer than the classifier's stages.
**Judged by another network:** the classifier the dream was optimised against always agrees; a linear probe on
VGG-19 features, which never saw the classifier, is the fairer judge (see the README).
"""
SIZE_CHOICES = [("Automatic (400x600; deep dream: your picture's shape)", "auto"), ("400x600", "400x600"),
                ("512x768", "512x768"), ("683x1024", "683x1024"), ("Your picture's shape, 600 px", "picture"),
                ("Your picture's shape, 1024 px", "picture-1024")]


def layer_choices() -> list[tuple[str, str]]:
    return [("None: genre dream", "none")] + [(f"classifier: {l.split('.')[1]}", l) for l in classifier_layers()] + \
        [(f"VGG-19: {l}", l) for l in VGG_DREAM_LAYERS]


def build(services: Services, files: OutputFiles):
    D = Dreamer
    cancels = Cancels()
    with gr.Tab("Dream", id="dream"):
        status = status_markdown(services.dream)
        with gr.Row():
            with gr.Column(scale=1):
                genres = raw(gr.CheckboxGroup(GENRE_CHOICES, value=["Horror_Thriller"], label="Dream of genres",
                                              elem_id="dream-genres"))
                picture = image_input("Your picture (optional for a genre dream; needed for deep dream)",
                                      height=260, elem_id="dream-picture")
                layer = raw(gr.Dropdown(layer_choices(), value="none", label="Deep dream layer"))
                with gr.Row():
                    size = raw(gr.Dropdown(SIZE_CHOICES, value="auto", label="Size (WxH)", allow_custom_value=True,
                                       elem_id="dream-size"))
                    steps = raw(gr.Slider(10, 400, value=D.DEFAULT_STEPS, step=10, label="Steps (genre dream)",
                                     elem_id="dream-steps"))
                with gr.Row():
                    strength = raw(gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Strength"))
                    seed = raw(gr.Number(value=0, precision=0, label="Seed", minimum=0))
                    dice = gr.Button("🎲", scale=0, min_width=40)
                with gr.Accordion("Deep dream settings", open=False):
                    iterations = raw(gr.Slider(1, 40, value=D.DEFAULT_ITERATIONS, step=1,
                                               label="Iterations per octave"))
                    octaves = raw(gr.Slider(1, D.MAX_OCTAVES, value=D.DEFAULT_OCTAVES, step=1, label="Octaves"))
                    scale = raw(gr.Slider(D.MIN_SCALE, D.MAX_SCALE, value=D.DEFAULT_SCALE, step=0.1,
                                          label="Octave scale"))
                with gr.Row():
                    button = gr.Button("Dream", variant="primary", elem_id="dream-btn")
                    cancel_button = gr.Button("Cancel (keep the dream so far)", variant="stop")
            with gr.Column(scale=1):
                result = gr.Image(label="Dream", type="filepath", height=600, interactive=False, format="png",
                                  elem_id="dream-out")
                judged = gr.Label(num_top_classes=3, label="What the classifier sees in it", elem_id="dream-label")
                notes_md = gr.Markdown(elem_id="dream-notes")
                poster_title, poster_seed, poster_button, poster_out = poster_control.build("dream")
        pics = content_examples()
        if pics:
            gr.Examples([[p] for p in pics], inputs=[picture], label="Pictures to dream on")
        with gr.Accordion("How it works", open=False):
            gr.Markdown(HOW)

    @gpu
    @guarded
    def dream(genre_list, picture, layer, size, steps, iterations, octaves, scale, strength, seed,
              request: gr.Request = None):
        svc = services.dream.get()
        key, cancel = cancels.start(request)

        def job(progress=None):
            return svc.dream(genre_list or None, image=picture, layer=layer, size=None if size in (None, "", "auto")
                             else size, steps=steps, iterations=iterations, octaves=octaves, scale=scale,
                             strength=strength, seed=seed, progress=progress, cancel=cancel)

        try:
            # The previews show in the picture as they come (no progress overlay on it); the step count and a steady
            # elapsed time go in the notes, renewed about every second.
            started = time.monotonic()
            yield None, None, progress_text("Dreaming", None, started)
            for kind, payload in preview_stream(job, cancel, "Dreaming", started):
                if kind == "done":
                    img = payload
                    scores = svc.classifier.predict(img)["scores"]
                    notes = image_notes(img)
                    yield files.save(img, "dream"), {G.DISPLAY_NAMES[g]: float(p) for g, p in scores.items()}, \
                        notes_markdown(notes) if notes else ""
                    break
                if kind == "skip":
                    yield gr.skip(), gr.skip(), gr.skip()
                    continue
                preview, line = payload
                yield (files.save(preview, "dream-preview") if preview is not None else gr.skip()), gr.skip(), line
        finally:
            cancels.finish(key)

    outputs = [result, judged, notes_md]
    run = button.click(dream, [genres, picture, layer, size, steps, iterations, octaves, scale, strength, seed],
                       outputs, api_name="dream", concurrency_id="dream", concurrency_limit=1, show_progress="minimal")
    clear_on_failure(run, outputs, [None, None, ""])
    poster_control.wire(poster_button, [result, genres, poster_title, poster_seed], poster_out, files, "dream",
                        "dream_poster")
    explain_clamping(steps, services.dream, lambda svc, v: svc.check_inputs(steps=v))
    explain_clamping(iterations, services.dream, lambda svc, v: svc.check_inputs(iterations=v))
    def cancel_dream(request: gr.Request):
        cancels.cancel(request)

    cancel_button.click(cancel_dream, None, None, api_visibility="private", queue=False)
    dice.click(random_seed, None, seed, api_visibility="private", queue=False)
    return [status], lambda: [status_update(services.dream)]
