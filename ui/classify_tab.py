"""The Classify tab: a poster's genres, where each was seen (Grad-CAM), similar known posters.

The last picture's analysis (scores and feature map) stays in the session, so changing the heatmap genre reruns
only Grad-CAM on it, not decoding and the whole network."""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from poster_studio import genres as G
from poster_studio.classify import Analysis

from .common import GENRE_CHOICES, OutputFiles, Services, clear_on_failure, guarded, image_input, notes_markdown, \
    poster_gallery, poster_list_markdown, raw, status_markdown, status_update

HOW = """
**Method:** EfficientNet-Lite0 (ImageNet-pretrained) fine-tuned on the posters at their 2:3 shape, with a
sigmoid per genre (a poster can have several) and per-genre decision thresholds tuned on held-out posters.
The **heatmap** is Grad-CAM: where in the poster the evidence for the chosen genre was found. **Similar
posters** are the nearest neighbours in the model's 128-d embedding of the training posters.
**Principal masks** (as in the MindsEye study): each of the top genres' scores is backpropagated to the pixels, and
a PCA of those saliency masks gives the principal masks: the first is the evidence all genres share, the next ones
what tells the genres apart. Each is shown in the heatmap's colours, with the genres the classifier finds when it
sees only that part of the picture.
"""
K_SIMILAR = 5
MASKS = 3
# Classify requests running at once (~0.1 s each on one thread); the other tabs run one at a time.
CLASSIFY_CONCURRENCY = int(os.environ.get("POSTER_STUDIO_CLASSIFY_CONCURRENCY") or 2)
ROOT = Path(__file__).resolve().parents[1]


def examples() -> list[str]:
    return [str(p) for p in sorted((ROOT / "docs").glob("example-poster-*.png"))][:6]


def summary(analysis: Analysis, heat_genre: str) -> str:
    labels = ", ".join(G.DISPLAY_NAMES.get(x, x) for x in analysis.labels) or "none above its threshold"
    text = f"**Predicted genres:** {labels}  \n**Heatmap:** evidence for {G.DISPLAY_NAMES.get(heat_genre, heat_genre)}"
    return text + (f"\n\n{notes_markdown(analysis.notes)}" if analysis.notes else "")


def build(services: Services, files: OutputFiles):
    with gr.Tab("Classify", id="classify"):
        status = status_markdown(services.classifier)
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Poster (drop, paste or use the webcam)", height=420, elem_id="clf-image")
                heat_genre = raw(gr.Dropdown([("Top genre", "top")] + GENRE_CHOICES, value="top",
                                             label="Heatmap for genre"))
                button = gr.Button("Classify", variant="primary", elem_id="clf-btn")
            with gr.Column(scale=1):
                label = gr.Label(num_top_classes=len(G.GENRES), label="Genre probabilities", elem_id="clf-label")
                summary_md = gr.Markdown(label="Summary")
            with gr.Column(scale=1):
                heatmap_img = gr.Image(label="Where the evidence is (Grad-CAM)", type="filepath", height=420,
                                       interactive=False, format="png", elem_id="clf-heatmap")
        with gr.Row():
            similar_md = gr.Markdown(label="Similar posters (titles)")
            similar_gallery = gr.Gallery(label="Similar posters", columns=5, height=200, visible=False,
                                         object_fit="contain", allow_preview=True, elem_id="clf-similar")
        with gr.Accordion("Principal masks (a second view beside Grad-CAM)", open=False):
            masks_button = gr.Button("Find the principal masks", elem_id="clf-masks-btn")
            masks_gallery = gr.Gallery(label="Principal masks", columns=MASKS, height="auto", object_fit="contain",
                                       elem_id="clf-masks")
            masks_md = gr.Markdown()
        analysis = gr.State(None)
        pics = examples()
        try_examples = gr.Examples([[e] for e in pics], inputs=[image], label="Generated posters to try") \
            if pics else None
        with gr.Accordion("How it works", open=False):
            gr.Markdown(HOW)

    @guarded
    def classify(picture, genre, progress=gr.Progress()):
        clf = services.classifier.get()
        progress(0.1, desc="Classifying")
        a = clf.analyze(picture, k=K_SIMILAR if clf.index is not None else 0)
        g, heat = clf.heatmap(a, genre)
        similar = poster_list_markdown(a.similar, "Most similar known posters", "distance", "distance ") \
            if clf.index is not None else "_This classifier checkpoint has no embeddings index._"
        thumbs = poster_gallery(a.similar)
        return ({G.DISPLAY_NAMES[k]: float(v) for k, v in a.scores.items()}, files.save(heat, "heatmap"),
                summary(a, g), similar, gr.Gallery(value=thumbs or None, visible=bool(thumbs)), (picture, a))

    @guarded
    def heatmap(picture, genre, kept: tuple[str, Analysis] | None):
        """Grad-CAM for another genre: from the kept analysis of this picture, else (API, another picture sent
        in the same session) a fresh one."""
        if picture is None:
            return None, ""
        clf = services.classifier.get()
        a = kept[1] if kept is not None and kept[0] == picture else clf.analyze(picture, k=0)
        g, heat = clf.heatmap(a, genre)
        return files.save(heat, "heatmap"), summary(a, g)

    @guarded
    def masks(picture):
        clf = services.classifier.get()
        out, lines = [], []
        for i, m in enumerate(clf.principal_masks(picture, count=MASKS), 1):
            top = " · ".join(f"{G.DISPLAY_NAMES[g]} {p:.2f}" for g, p in list(m["scores"].items())[:3])
            out.append((files.save(m["image"], "mask"), f"Mask {i} ({m['variance']:.0%})"))
            lines.append(f"**Mask {i}** ({m['variance']:.0%} of the evidence) — the picture seen only there: {top}")
        return out, "  \n".join(lines)

    outputs = [label, heatmap_img, summary_md, similar_md, similar_gallery, analysis]
    cleared = [None, None, "", "", gr.update(value=None, visible=False), None]
    run = gr.on([button.click, image.upload], classify, [image, heat_genre], outputs, api_name="classify",
                concurrency_id="classify", concurrency_limit=CLASSIFY_CONCURRENCY)
    clear_on_failure(run, outputs, cleared)
    if try_examples is not None:  # an example is classified at once, as a dropped poster is
        clear_on_failure(try_examples.load_input_event.then(
            classify, [image, heat_genre], outputs, api_visibility="private", concurrency_id="classify",
            concurrency_limit=CLASSIFY_CONCURRENCY), outputs, cleared)
    # another picture (or none): the previous picture's principal masks go
    image.change(lambda: (None, ""), None, [masks_gallery, masks_md], api_visibility="private", queue=False,
                 show_progress="hidden")
    heat_genre.input(heatmap, [image, heat_genre, analysis], [heatmap_img, summary_md], api_name="heatmap",
                     concurrency_id="classify", concurrency_limit=CLASSIFY_CONCURRENCY)
    clear_on_failure(masks_button.click(masks, [image], [masks_gallery, masks_md], api_name="masks",
                                        concurrency_id="classify", concurrency_limit=CLASSIFY_CONCURRENCY),
                     [masks_gallery, masks_md], [None, ""])
    return [status], lambda: [status_update(services.classifier)]
