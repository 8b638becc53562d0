"""Classifier: metrics helpers, save/load round trip, the shipped checkpoint on real posters, one analysis per
picture (scores, similar posters, kept feature map) and Grad-CAM for any genre from it, argument checks, the CLI,
and a resumable tiny training run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poster_studio import genres as G
from poster_studio import hub
from poster_studio.classify import Analysis, EmbeddingIndex, Classifier, PosterClassifier, from_imagenet, load_index
from poster_studio.classify.evaluate import multilabel_metrics, tune_thresholds
from poster_studio.data import PosterDataset, default_data_dir
from poster_studio.errors import CheckpointError, InvalidArgumentError, InvalidImageError

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir()
SHIPPED = ROOT / "checkpoints" / "classifier"
needs_data = pytest.mark.skipif(not (DATA / "labels.csv").exists(), reason=f"poster data not found at {DATA}")
needs_ckpt = pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="no trained classifier yet")


@pytest.fixture(scope="module")
def shipped():
    return Classifier.load(directory=SHIPPED)


def test_metrics_perfect_and_random():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 7)) < 0.3).astype(int)
    y[np.arange(200), rng.integers(0, 7, 200)] = 1
    perfect = multilabel_metrics(y * 0.9 + 0.05, y, 0.5)
    assert perfect["micro_f1"] == 1.0 and perfect["macro_f1"] == 1.0 and perfect["mAP"] == 1.0
    assert perfect["top1_in_labels"] == 1.0
    noise = multilabel_metrics(rng.random((200, 7)), y, 0.5)
    assert noise["mAP"] < 0.6 and noise["macro_f1"] < 0.6


def test_tune_thresholds_finds_the_separating_value():
    scores = np.concatenate([np.full(50, 0.2), np.full(50, 0.3)])[:, None].repeat(7, 1)
    y = np.concatenate([np.zeros(50), np.ones(50)])[:, None].repeat(7, 1)
    th = tune_thresholds(scores, y)
    assert all(0.2 < t <= 0.3 for t in th)


def test_save_load_round_trip(tmp_path):
    model = from_imagenet(thresholds=[0.3] * 7).eval()
    hub.save_checkpoint(model, tmp_path / "classifier", metrics={"val_mAP": 0.1})
    clf = Classifier.load(directory=tmp_path / "classifier")
    assert clf.model.thresholds == [0.3] * 7
    x = torch.randn(1, 3, 288, 192)
    with torch.no_grad():
        assert torch.allclose(model(x), clf.model(x), atol=1e-6)
    card = (tmp_path / "classifier" / "README.md").read_text()
    assert "val_mAP" in card and "library_name: poster-studio" in card


def test_lite2_variant_round_trip_and_a_config_without_variant_is_lite0(tmp_path):
    """Issue 24: PosterClassifier(variant=2) carries the packaged ImageNet Lite2 weights and round-trips with its
    variant; a config written before `variant` existed still loads, as Lite0."""
    from poster_studio.backbones import efficientnet_lite

    model = from_imagenet(variant=2, image_size=(96, 64)).eval()
    ref = efficientnet_lite(2).state_dict()
    assert model.variant == 2 and torch.equal(model.backbone.conv_stem.weight, ref["conv_stem.weight"])
    hub.save_checkpoint(model, tmp_path / "lite2")
    assert json.loads((tmp_path / "lite2" / "config.json").read_text())["variant"] == 2
    loaded = Classifier.load(directory=tmp_path / "lite2").model
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        assert loaded.variant == 2 and torch.allclose(model(x), loaded(x), atol=1e-6)
    lite0 = PosterClassifier(image_size=(96, 64))
    hub.save_checkpoint(lite0, tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    cfg.pop("variant")
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    assert Classifier.load(directory=tmp_path / "old").model.variant == 0


def test_index_titles_come_back_without_the_data_mojibake(tmp_path):
    """'Similar posters' showed "Al final del tÃºnel": the index's titles are repaired on load (others unchanged)."""
    idx = EmbeddingIndex(["a", "b"], ["Al final del tÃºnel", "Heat"], ["2016", "1995"], torch.randn(2, 128),
                         torch.rand(2, 7))
    hub.save_checkpoint(PosterClassifier(image_size=(96, 64)), tmp_path / "clf", extra_files=idx.files())
    assert load_index(tmp_path / "clf").titles == ["Al final del túnel", "Heat"]


def test_truncated_checkpoint_names_the_file(tmp_path):
    hub.save_checkpoint(PosterClassifier(), tmp_path / "classifier")
    w = tmp_path / "classifier" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        Classifier.load(directory=tmp_path / "classifier")


@needs_data
@needs_ckpt
def test_shipped_model_is_good_on_real_val_posters(shipped):
    ds = PosterDataset(DATA / "images", DATA / "labels.csv", split="val", limit=150)
    probs = shipped.predict_proba([ds.path(i) for i in range(len(ds))])
    assert probs.shape == (150, 7) and ((0 <= probs) & (probs <= 1)).all()
    m = multilabel_metrics(probs, ds.targets.numpy(), shipped.model.thresholds)
    assert m["mAP"] > 0.5, m  # random scoring gives ~0.25 here
    assert m["top1_in_labels"] > 0.6, m


@needs_data
@needs_ckpt
def test_analyze_similar_and_heatmaps(shipped):
    idx = shipped.index
    assert idx is not None and len(idx.ids) == len(idx.embeddings) > 10000
    poster = DATA / "images" / f"{idx.ids[123]}.jpg"
    pred = shipped.predict(poster)
    assert set(pred["scores"]) == set(G.GENRES) and pred["top"] in G.GENRES
    assert all(pred["scores"][g] >= t for g, t in zip(G.GENRES, shipped.model.thresholds) if g in pred["labels"])
    a = shipped.analyze(poster, k=5)
    assert isinstance(a, Analysis) and a.scores == pred["scores"] and a.labels == pred["labels"] and a.top == pred["top"]
    # A training poster's nearest neighbour in the index is itself.
    assert a.similar[0]["id"] == idx.ids[123] and a.similar[0]["distance"] < 0.05
    assert len(a.similar) == 5 and a.similar[1]["distance"] >= a.similar[0]["distance"]
    assert shipped.analyze(poster, k=2).similar == a.similar[:2]
    assert a.shown.size == (182, 268) and a.notes == []  # a poster is shown as it is
    g1, horror = shipped.heatmap(a, "Horror & Thriller")
    g2, comedy = shipped.heatmap(a, "comedy")
    assert (g1, g2) == ("Horror_Thriller", "Comedy")
    h, c = (np.asarray(m, dtype=np.float32) for m in (horror, comedy))
    assert h.shape == (268, 182, 3) and np.abs(h - c).mean() > 1.0  # different genres, different evidence
    assert shipped.heatmap(a)[0] == a.top == shipped.heatmap(a, "top")[0]
    # alpha 0 is the picture itself, alpha 1 only the colour map
    plain = np.asarray(shipped.heatmap(a, "Comedy", alpha=0.0)[1], dtype=np.int16)
    assert np.abs(plain - np.asarray(a.shown, dtype=np.int16)).max() <= 1
    assert np.abs(np.asarray(shipped.heatmap(a, "Comedy", alpha=1.0)[1], dtype=np.int16) - plain).mean() > 20


@needs_ckpt
def test_heatmap_reruns_only_the_head(shipped, monkeypatch):
    """Switching the heatmap genre on a kept Analysis must not run the network's stem or trunk again."""
    a = shipped.analyze(Image.new("RGB", (200, 300), (120, 60, 30)), k=0)

    def boom(*args, **kwargs):
        raise AssertionError("the network's trunk ran again")

    monkeypatch.setattr(shipped.model, "feature_maps", boom)  # every member's stem and trunk (one or an ensemble)
    for genre in G.GENRES:
        g, img = shipped.heatmap(a, genre)
        assert g == genre and img.size == a.shown.size
    with pytest.raises(AssertionError, match="trunk ran again"):  # the stand-ins are really in place
        shipped.analyze(Image.new("RGB", (200, 300)), k=0)


@needs_ckpt
def test_analyze_checks_its_arguments(shipped):
    with pytest.raises(InvalidImageError, match="No image"):
        shipped.analyze(None)
    with pytest.raises(InvalidArgumentError, match="Similar posters"):
        shipped.analyze(Image.new("RGB", (200, 300)), k=Classifier.MAX_K + 1)
    a = shipped.analyze(Image.new("RGB", (200, 300)), k=0)
    assert a.similar == []
    with pytest.raises(InvalidArgumentError, match="Unknown genre 'Western'"):
        shipped.heatmap(a, "Western")
    with pytest.raises(InvalidArgumentError, match="Heatmap opacity"):
        shipped.heatmap(a, "Comedy", alpha=2)
    no_index = Classifier(shipped.model, index=None)
    with pytest.raises(CheckpointError, match="no embeddings index"):
        no_index.analyze(Image.new("RGB", (200, 300)), k=3)
    assert no_index.analyze(Image.new("RGB", (200, 300)), k=0).similar == []


@needs_ckpt
def test_odd_images_classify_and_bad_ones_raise(shipped, tmp_path):
    for mode in ("L", "RGBA", "CMYK", "P"):
        img = Image.new(mode, (300, 200), 128 if mode in ("L", "P") else None)
        a = shipped.analyze(img, k=0)  # wide image: centre-cropped to 2:3
        assert abs(sum(a.scores.values())) > 0 and a.shown.size == (133, 200)
        assert any("not 2:3 (300x200)" in n and "centre" in n for n in a.notes), a.notes
    bad = tmp_path / "x.png"
    bad.write_text("<html>not an image</html>")
    with pytest.raises(InvalidImageError):
        shipped.predict(bad)


@needs_data
@needs_ckpt
def test_cli_classify_json():
    poster = next((DATA / "images").glob("val_*.jpg"))
    out = subprocess.run([sys.executable, "-m", "poster_studio", "classify", str(poster), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)[0]
    assert set(res["scores"]) == set(G.GENRES) and len(res["similar"]) == 5
    bad = subprocess.run([sys.executable, "-m", "poster_studio", "classify", str(ROOT / "README.md")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "error:" in bad.stderr and "Traceback" not in bad.stderr


@needs_data
def test_training_is_resumable(tmp_path):
    cmd = [sys.executable, str(ROOT / "train" / "train_classifier.py"), "--data", str(DATA), "--train-limit", "48",
           "--val-limit", "48", "--batch", "16", "--threads", "1", "--work", str(tmp_path / "run"),
           "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "ckpt"), "--seed-metrics", "none"]
    first = subprocess.run(cmd + ["--epochs", "1"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(cmd + ["--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed" in second.stdout and "at epoch 1" in second.stdout
    hist = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert hist["best_epoch"] in (1, 2)
    clf = Classifier.load(directory=tmp_path / "ckpt")
    assert len(load_index(tmp_path / "ckpt").ids) == 48
    assert clf.predict_proba([Image.new("RGB", (182, 268))]).shape == (1, 7)


@needs_data
def test_full_fine_tune_is_resumable_and_ships_with_its_ablations(tmp_path):
    """--full: the whole network on augmented posters, EMA evaluated on val, resumable by step; the final stage
    ships the best EMA weights with thresholds, the index and the head-level ablations."""
    cmd = [sys.executable, str(ROOT / "train" / "train_classifier.py"), "--data", str(DATA), "--full",
           "--train-limit", "48", "--val-limit", "32", "--batch", "8", "--eval-every", "3", "--threads", "1",
           "--size", "96x64",  # the recipe at a ninth of the pixels: the suite's time, not the model's quality
           "--work", str(tmp_path / "run"), "--pixels", str(tmp_path / "px"), "--out", str(tmp_path / "ckpt"),
           "--probe-cache", str(tmp_path / "none"),
           "--seed-metrics", "none"]
    first = subprocess.run(cmd + ["--epochs", "1"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(cmd + ["--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed" in second.stdout and "at step 6" in second.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best"]["step"] in (0, 3, 6, 9, 12) and metrics["train_posters"] == 48
    assert {"test_time_flips", "refit_bce_control", "refit_asymmetric_loss", "refit_focal_loss"} <= set(metrics["ablations"])
    clf = Classifier.load(directory=tmp_path / "ckpt")
    assert len(load_index(tmp_path / "ckpt").ids) == 48
    assert "ablation_refit_focal_loss" in (tmp_path / "ckpt" / "README.md").read_text()
    assert clf.predict_proba([Image.new("RGB", (182, 268))]).shape == (1, 7)


# ------------------------------------------------------------------------------------------ the second judge
def test_vgg_probe_round_trip_and_judges_like_the_classifier_interface(tmp_path):
    from poster_studio.classify.probe import FEATURE_DIM, GenreProbe, vgg_features

    imgs = [Image.new("RGB", (120, 180), c) for c in ((200, 20, 20), (20, 20, 200))]
    f = vgg_features(imgs)
    assert f.shape == (2, FEATURE_DIM) and np.isfinite(f).all() and not np.allclose(f[0], f[1])
    probe = GenreProbe()
    with torch.no_grad():
        probe.mean.copy_(torch.from_numpy(f.mean(0)))
        probe.linear.weight.normal_()
    hub.save_checkpoint(probe, tmp_path / "probe", description="test probe")
    again = GenreProbe.load(directory=tmp_path / "probe")
    p = again.predict_proba(imgs)
    assert p.shape == (2, 7) and np.allclose(p, probe.predict_proba(imgs), atol=1e-6)


def test_shipped_vgg_probe_recognises_val_posters():
    from conftest import DATA_DIR, checkpoint_missing, checkpoints_dir

    if checkpoint_missing("probe") or not (DATA_DIR / "labels.csv").is_file():
        pytest.skip("probe checkpoint or poster data missing")
    from poster_studio.classify.probe import GenreProbe

    metrics = json.loads((checkpoints_dir() / "probe" / "metrics.json").read_text())
    assert metrics["mAP"] > 0.4 and metrics["val_single_genre_top1"]["mean"] > 1 / 7 + 0.1  # well above chance
    ds = PosterDataset(DATA_DIR / "images", DATA_DIR / "labels.csv", split="val", limit=40)
    probs = GenreProbe.load().predict_proba([ds.path(i) for i in range(len(ds))])
    hits = ds.targets.numpy()[np.arange(len(ds)), probs.argmax(1)]
    assert hits.mean() > 0.35  # the top genre is among the poster's labels far more often than by chance


def test_augmented_batches_visit_each_poster_once_per_epoch_serially_and_in_workers():
    """The --full batch stream: epoch e is a permutation seeded by e (the same with --workers, where a DataLoader
    augments in other processes, as on a GPU machine); a resume mid-epoch continues that permutation."""
    import importlib

    sys.path.insert(0, str(ROOT / "train"))
    tc = importlib.import_module("train_classifier")
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    augment = lambda u8: u8.float()  # noqa: E731  (identity: the batch shows which posters it holds)
    for workers in (0, 2):
        stream = tc.augmented_batches(images, augment, 3, 3, 0, workers)
        steps = [next(stream) for _ in range(6)]  # two epochs of 3 steps of 3 (one poster left out per epoch)
        for idx, x in steps:
            assert x.shape == (3, 3, 4, 4) and torch.equal(x[:, 0, 0, 0].long(), idx)
        for epoch in (0, 1):
            seen = torch.cat([idx for idx, _ in steps[3 * epoch: 3 * epoch + 3]])
            assert len(set(seen.tolist())) == 9
        resumed = tc.augmented_batches(images, augment, 3, 3, 4, workers)
        assert torch.equal(next(resumed)[0], steps[4][0]) and torch.equal(next(resumed)[0], steps[5][0])
        assert not torch.equal(steps[0][0], steps[3][0])


def test_folded_batchnorm_is_the_same_network_for_outputs_and_input_gradients():
    """Classifier.load folds each BatchNorm into the conv before it (served networks only): the logits, the
    embedding and the gradient with respect to the picture (dreams, Grad-CAM, guidance) stay the same."""
    from copy import deepcopy

    from poster_studio.classify.model import fold_batchnorm

    torch.manual_seed(0)
    net = PosterClassifier(image_size=(96, 64)).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics, as after training
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(deepcopy(net)).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 96, 64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    (a_logits, a_emb), (b_logits, b_emb) = net.head_from_maps(net.feature_maps(x)), \
        folded.head_from_maps(folded.feature_maps(x2))
    assert torch.allclose(a_logits, b_logits, atol=1e-4) and torch.allclose(a_emb, b_emb, atol=1e-4)
    a_logits[:, 2].sum().backward(), b_logits[:, 2].sum().backward()
    # the same up to rounding, which can flip a ReLU6 sitting exactly at 0 or 6: compared as a whole
    assert (x.grad - x2.grad).norm() <= 2e-2 * x.grad.norm()


@needs_ckpt
def test_loaded_service_is_folded_and_scores_as_the_saved_network(shipped):
    from poster_studio.classify import load_network

    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in shipped.model.modules())
    plain = Classifier(load_network(SHIPPED))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    pictures = [Image.new("RGB", (182, 268), (200, 30, 30)), Image.new("RGB", (400, 300), (20, 60, 200))]
    assert np.allclose(shipped.predict_proba(pictures), plain.predict_proba(pictures), atol=1e-4)
