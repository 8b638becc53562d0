"""The Generate tab: tick genres, get posters; a morph strip between two genre sets or seeds."""
from __future__ import annotations

import gradio as gr

from poster_studio import genres as G
from poster_studio.generate import PosterGenerator

from .common import GENRE_CHOICES, Cancels, OutputFiles, Services, WorkTimer, clear_on_failure, explain_clamping, \
    gpu, guarded, random_seed, raw, run_reported, run_timed, status_markdown, status_update

HOW = """
**Engines.** *Latent* (Generate v3, the default): a small genre-conditional **flow-matching prior**
draws a 64 x 15 x 10 latent (the leading principal components of a frozen ImageNet EfficientNet-Lite1's stride-16
features of a poster), and a decoder trained here to invert that encoder (then against a critic on the same
frozen features, so that the prior's samples come out as sharp posters) paints it at 160x240; each poster is
checked against the training posters (the classifier's embedding index) and redrawn when it is too close to one
(`checkpoints/generator-latent/README.md`). **Classifier guidance** (latent engine): after the prior, a few Adam steps
move each poster's latent toward the ticked genres under the project classifier, seen through random crops and
jitter, with the latent held near the prior's sample; *Stop guiding* keeps the posters as far as they got.
*Instant*: the GAN below, about 20 ms a poster.

**Instant engine:** a genre-conditioned GAN trained here on about 13,000 movie posters: a DCGAN-style generator with
conditional batch norm fed by a learned embedding of the ticked genres (a multi-hot condition, so
*Comedy + Romance* is a real request; none ticked = genres drawn from the training data's mix), trained
against a spectral-norm **projection discriminator** with the hinge loss, **DiffAugment** and an **EMA** of the
generator weights. Posters come out natively in the 2:3 shape at the size shown in *Size*; *400x600* is made by
the learned upscaler (a compact super-resolution network trained here on poster thumbnails,
`checkpoints/upscaler`) when it is installed, else by Lanczos resampling: the size option names which
(model cards: `checkpoints/generator/README.md`, `checkpoints/upscaler/README.md`). The **seed** makes results
reproducible; **truncation** below 1 scales the noise down: safer, less varied posters.
**Morph** interpolates (slerp of the noise, linear genre weights) between two genre sets or two seeds.
**Typography** makes the picture a poster: a title in the calmer of the poster's two ends (its title band), a
tagline, star names, a billing block in condensed capitals and a release line, in one of three layouts per genre
(fonts bundled, SIL OFL), chosen by the seed. *Invented*: a new title from a character n-gram model trained on the
data's titles per genre (never one of them: `checkpoints/titles/README.md`), a tagline from the genre's phrases,
generic names; what you type replaces its invented part. *Your title*: only what you type. Words are never broken.
Each poster is shown with and without its typography.
"""
POSTER_TIME = WorkTimer({"instant:native": 0.02, "instant:400x600": 0.3, "latent:native": 0.3,
                         "latent:400x600": 0.6})  # seconds a poster, as measured (README)
VISITOR_GUIDANCE = 10  # the tab's guidance steps on the latent engine (the API's default stays 0: the library's)
EXAMPLES = [[["Horror_Thriller"], 8, 7], [["Comedy", "Romance"], 8, 42], [["Animation"], 8, 3],
            [["Documentary"], 4, 11]]


ENGINE_LABELS = {"latent": "Latent (v3)", "instant": "Instant GAN"}
ENGINE_CAPTIONS = {"latent": "latent engine", "instant": "instant GAN"}


def engine_choices(slot) -> list[tuple[str, str]]:
    gen = slot.service
    engines = gen.engines if gen is not None else PosterGenerator.ENGINES
    return [(ENGINE_LABELS[e], e) for e in engines]


def size_choices(slot, morph: bool = False) -> list[tuple[str, str]]:
    """Native names each engine's own size when there are several (the instant GAN's and the latent engine's
    differ); `morph`: the morph strip's engine only."""
    gen = slot.service
    engines = (gen.morph_engine,) if gen is not None and morph else None
    if gen is None:
        native = "Native"
    else:
        sizes = {e: wh for e, wh in gen.native_sizes().items() if engines is None or e in engines}
        if len(sizes) == 1:
            (w, h), = sizes.values()
            native = f"Native {w}x{h}"
        else:
            native = "Native (" + ", ".join(f"{ENGINE_LABELS[e]} {w}x{h}" for e, (w, h) in sizes.items()) + ")"
    up = f"400x600 ({gen.upscale_method})" if gen is not None else "Upscaled 400x600"
    return [(native, "native"), (up, "400x600")]


def guidance_setting(slot, engine: str | None) -> dict:
    """The guidance slider for an engine: VISITOR_GUIDANCE steps on the latent engine when the service can guide
    (its classifier is installed), else 0 and locked (the service would refuse any other value)."""
    gen = slot.service
    can = engine == "latent" and gen is not None and getattr(gen, "guidance", None) is not None
    return {"value": VISITOR_GUIDANCE if can else 0, "interactive": can}


def build(services: Services, files: OutputFiles):
    """The tab's layout and events; returns (components, refresh function) for the page's load event."""
    L = PosterGenerator
    with gr.Tab("Generate", id="generate"):
        status = status_markdown(services.generator)
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                genres = raw(gr.CheckboxGroup(GENRE_CHOICES, label="Genres (none ticked = any genre)",
                                              elem_id="gen-genres"))
                count = raw(gr.Slider(1, L.MAX_COUNT, value=8, step=1, label="How many posters"))
                with gr.Row(equal_height=True):
                    seed = raw(gr.Number(value=0, precision=0, minimum=0, maximum=L.MAX_SEED, label="Seed", scale=3))
                    dice = gr.Button("🎲 Random", scale=1, min_width=90, elem_id="gen-dice")
                engine = raw(gr.Radio(engine_choices(services.generator), value=None, label="Engine",
                                      elem_id="gen-engine",
                                      info="Latent: the v3 engine (the default when installed); Instant: the GAN, about 20 ms a poster."))
                truncation = raw(gr.Slider(0.1, 1.0, value=0.7, step=0.05,
                                           label="Truncation (lower = safer, higher = more varied)"))
                size = raw(gr.Radio(size_choices(services.generator), value="native", label="Size",
                                    info="400x600: the native poster enlarged by the method named."))
                guidance = raw(gr.Slider(0, L.MAX_GUIDANCE, value=0, step=1, label="Classifier guidance steps",
                                         elem_id="gen-guidance",
                                         info="Latent engine: each step moves the posters toward the ticked genres "
                                              "under the classifier (10 steps: 7-30 s for 8 posters, by the CPU; 0 = off)."))
                typography = raw(gr.Radio([("None", "none"), ("Your title", "title"), ("Invented", "invented")],
                                          value="invented", label="Typography", elem_id="gen-typography",
                                          info="Invented: a new title, tagline and credits (what you type below "
                                               "is used instead)."))
                with gr.Accordion("Your title, tagline, credits (optional)", open=False):
                    title = raw(gr.Textbox("", label="Title", max_length=L.MAX_TITLE, elem_id="gen-title",
                                           placeholder="typeset in the genre's style, where the poster's title band is"))
                    tagline = raw(gr.Textbox("", label="Tagline", max_length=L.MAX_TAGLINE))
                    credits = raw(gr.Textbox("", label="Credits line", max_length=L.MAX_CREDITS,
                                             placeholder="Directed by ... Starring ..."))
                with gr.Row():
                    button = gr.Button("Generate", variant="primary", elem_id="gen-btn", scale=3)
                    cancel_button = gr.Button("Stop guiding", variant="stop", scale=1, min_width=90,
                                              elem_id="gen-cancel")
            with gr.Column(scale=3):
                gallery = gr.Gallery(label="Generated posters", columns=4, height="auto", object_fit="contain",
                                     buttons=["download", "fullscreen"], elem_id="gen-gallery", format="png")
        examples = gr.Examples(EXAMPLES, inputs=[genres, count, seed], label="Try")
        with gr.Accordion("Morph between two genre sets or two seeds", open=False):
            with gr.Row():
                genres_a = raw(gr.CheckboxGroup(GENRE_CHOICES, value=["Comedy"], label="From genres"))
                genres_b = raw(gr.CheckboxGroup(GENRE_CHOICES, value=["Horror_Thriller"], label="To genres"))
            with gr.Row():
                seed_a = raw(gr.Number(value=0, precision=0, minimum=0, maximum=L.MAX_SEED, label="From seed"))
                seed_b = raw(gr.Number(value=0, precision=0, minimum=0, maximum=L.MAX_SEED, label="To seed"))
                steps = raw(gr.Slider(L.MIN_MORPH_STEPS, L.MAX_MORPH_STEPS, value=8, step=1, label="Frames"))
                morph_size = raw(gr.Radio(size_choices(services.generator, morph=True), value="native",
                                          label="Size"))
            morph_button = gr.Button("Morph", variant="secondary")
            strip = gr.Gallery(label="Morph strip", show_label=False, columns=8, rows=1, height=190,
                               object_fit="contain", format="png", allow_preview=False, elem_id="morph-strip")
            gif = gr.File(label="Animated GIF", height=60)
        with gr.Accordion("How it works", open=False):
            gr.Markdown(HOW)

    cancels = Cancels()

    @gpu
    @guarded
    def generate(genres, count, seed, truncation, size, title="", tagline="", credits="", typography=None,
                 engine=None, guidance=0, progress=gr.Progress(), request: gr.Request = None):
        gen = services.generator.get()
        engine = gen.check_inputs(engine=engine)["engine"]  # the service's own name for it (None: the default)
        stopped = False
        if engine == "latent":  # the service reports each prior and guidance step; Stop guiding ends the guidance
            key, cancel = cancels.start(request)
            try:
                images, stopped = run_reported(lambda progress: gen.generate(
                    genres, n=count, seed=seed, truncation=truncation, size=size, engine=engine, guidance=guidance,
                    progress=progress, cancel=cancel), progress, "Generating posters", cancel)
            finally:
                cancels.finish(key)
        else:  # the instant GAN reports no steps: the bar moves over the time such posters took before
            images = run_timed(lambda: gen.generate(genres, n=count, seed=seed, truncation=truncation, size=size,
                                                    engine=engine, guidance=guidance),
                               progress, "Generating posters", POSTER_TIME, f"{engine}:{size}", count)
        # typography None (a direct call without it): the typed title if any, as before the choice existed
        titled = gen.typeset(images, genres, title, tagline, credits, typography=typography, seed=seed,
                             engine=engine) \
            if title or typography not in (None, "none") else []
        titled = [] if all(t is im for t, im in zip(titled, images)) else titled  # "none": the posters themselves
        what = " + ".join(G.DISPLAY_NAMES[g] for g in G.parse_genres(genres)) or "any genre"
        items = []
        # the caption names the engine when it is not the default one
        other_engine = "" if engine == gen.default_engine else f" · {ENGINE_CAPTIONS[engine]}"
        for i, im in enumerate(images):  # with a title: each poster with it, then without it
            caption = f"#{i + 1} · seed {int(seed)} · {what}" + other_engine \
                + ((" · guidance stopped early" if stopped else f" · guided {int(guidance)} steps") if guidance else "")
            if titled:
                items.append((files.save(titled[i], "poster-titled"), f"#{i + 1} titled"))  # short: keeps the title visible
            items.append((files.save(im, "poster"), caption))
        return items

    @gpu
    @guarded
    def morph(genres_a, genres_b, seed_a, seed_b, steps, size, truncation, progress=gr.Progress()):
        gen = services.generator.get()
        progress(0.1, desc="Interpolating")
        frames = gen.morph(genres_a, genres_b, seed_a=seed_a, seed_b=seed_b, steps=steps, size=size,
                           truncation=truncation)
        return [files.save(f, "morph") for f in frames], files.save_gif(frames)

    # an example fills the inputs (truncation and size back to their defaults), then generates at once
    clear_on_failure(examples.load_input_event.then(
        lambda: (0.7, "native"), None, [truncation, size], api_visibility="private", queue=False).then(
        generate, [genres, count, seed, truncation, size, title, tagline, credits, typography, engine, guidance],
        gallery,
        api_name="generate_example", api_visibility="private", concurrency_id="generate"), [gallery], [None])
    dice.click(random_seed, outputs=seed, api_visibility="private", queue=False)
    clear_on_failure(button.click(generate, [genres, count, seed, truncation, size, title, tagline, credits, typography,
                                             engine, guidance],
                                  gallery, api_name="generate", concurrency_id="generate"), [gallery], [None])
    clear_on_failure(morph_button.click(morph, [genres_a, genres_b, seed_a, seed_b, steps, morph_size, truncation],
                                        [strip, gif], api_name="morph", concurrency_id="generate"),
                     [strip, gif], [None, None])
    explain_clamping(count, services.generator, lambda svc, v: svc.check_inputs(n=v))
    explain_clamping(steps, services.generator, lambda svc, v: svc.check_inputs(steps=v))
    explain_clamping(guidance, services.generator, lambda svc, v: svc.check_inputs(guidance=v))

    def stop_guiding(request: gr.Request):
        cancels.cancel(request)

    cancel_button.click(stop_guiding, None, None, api_visibility="private", queue=False)
    def guidance_for(engine_name):
        return gr.Slider(**guidance_setting(services.generator, engine_name))

    engine.input(guidance_for, engine, guidance, api_visibility="private", queue=False)

    def refresh():
        status_md = status_update(services.generator)
        gen = services.generator.service
        default = gen.default_engine if gen is not None else None
        return [status_md, gr.Radio(choices=size_choices(services.generator)),
                gr.Radio(choices=size_choices(services.generator, morph=True)),
                gr.Radio(choices=engine_choices(services.generator), value=default), guidance_for(default)]

    return [status, size, morph_size, engine, guidance], refresh
