"""PosterEnsemble: several classifiers as one network, saved as one checkpoint, used by the Classify service."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from poster_studio import hub
from poster_studio.classify import Classifier, PosterClassifier, PosterEnsemble, load_index, load_network
from poster_studio.data import default_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir()
needs_data = pytest.mark.skipif(not (DATA / "labels.csv").exists(), reason=f"poster data not found at {DATA}")


def members() -> list[PosterClassifier]:
    torch.manual_seed(0)
    small = PosterClassifier(image_size=(96, 64), thresholds=[0.4] * 7).eval()
    big = PosterClassifier(image_size=(144, 96), embed_dim=32, variant=2).eval()
    for m in (small, big):  # random heads big enough that the members disagree
        torch.nn.init.normal_(m.head.weight, std=1.0)
    return [small, big]


def test_logits_are_the_weighted_mean_of_the_members_on_their_own_sizes():
    a, b = members()
    ens = PosterEnsemble.of([a, b], weights=[0.25, 0.75], primary=1, embedding="concat").eval()
    assert ens.image_size == (144, 96) and ens.embed_dim == 128 + 32
    x = torch.rand(2, 3, 144, 96)
    with torch.no_grad():
        small_in = F.interpolate(x, size=(96, 64), mode="bilinear", antialias=True, align_corners=False)
        want = 0.25 * a(small_in) + 0.75 * b(x)
        got = ens(x)
        logits, emb = ens.head_from_maps(ens.feature_maps(x))
    assert torch.allclose(got, want, atol=1e-5) and torch.allclose(logits, want, atol=1e-5)
    assert not torch.allclose(a(small_in), b(x), atol=1e-2)  # the blend is not a no-op
    assert emb.shape == (2, 160) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    # any other input size: each member sees it scaled by its own ratio (dreams judge pictures of any shape)
    assert ens.member_input(torch.rand(1, 3, 288, 192), 0).shape[-2:] == (192, 128)
    assert ens.block_output(x, 2).shape[0] == 2
    # the default embedding is the primary member's, on the input as the ensemble scales it for that member
    for primary, (m, size) in enumerate(((a, (96, 64)), (b, (144, 96)))):
        ens_p = PosterEnsemble.of([a, b], weights=[0.25, 0.75], primary=primary).eval()
        with torch.no_grad():
            logits_p, emb_p = ens_p.head_from_maps(ens_p.feature_maps(x))
            want_emb = m.head_from_maps(m.feature_maps(ens_p.member_input(x, primary)))[1]
        assert ens_p.embed_dim == m.embed_dim and torch.allclose(emb_p, want_emb, atol=1e-5)
        assert torch.allclose(logits_p, want, atol=1e-5)  # the embedding choice leaves the logits alone
    with pytest.raises(ValueError, match="embedding must be one of"):
        PosterEnsemble.of([a, b], embedding="mean")


def test_round_trip_through_the_service_and_grad_cam_on_the_primary_member(tmp_path):
    ens = PosterEnsemble.of(members(), weights=[0.5, 0.5], primary=1, thresholds=[0.3] * 7).eval()
    hub.save_checkpoint(ens, tmp_path / "classifier", metrics={"val_mAP": 0.1})
    assert isinstance(load_network(tmp_path / "classifier"), PosterEnsemble)
    clf = Classifier.load(directory=tmp_path / "classifier")
    assert isinstance(clf.model, PosterEnsemble) and clf.thresholds == [0.3] * 7 and clf.model.weights == [0.5, 0.5]
    x = torch.rand(1, 3, 144, 96)
    with torch.no_grad():
        assert torch.allclose(ens(x), clf.model(x), atol=1e-6)
    pic = Image.new("RGB", (200, 300), (150, 40, 90))
    a = clf.analyze(pic, k=0)
    assert len(a.feature_maps) == 2 and abs(sum(a.scores.values()) - sum(clf.predict(pic)["scores"].values())) < 1e-3
    genre, overlay = clf.heatmap(a, "Horror_Thriller")
    assert genre == "Horror_Thriller" and overlay.size == a.shown.size
    assert clf.predict_proba([]).shape == (0, 7) and clf._run([])[1].shape == (0, 32)
    # Grad-CAM differentiates the primary member's map: with the other member's weight at 0 it is unchanged
    solo = PosterEnsemble.of(members(), weights=[0.0, 1.0], primary=1).eval()
    s = Classifier(solo)
    sa = s.analyze(pic, k=0)
    masks = [np.asarray(c.heatmap(an, "Comedy", alpha=1.0)[1], dtype=float) for c, an in ((clf, a), (s, sa))]
    assert np.abs(masks[0] - masks[1]).mean() < 1.0


def test_a_single_classifier_checkpoint_still_loads_as_one_network(tmp_path):
    a = members()[0]
    hub.save_checkpoint(a, tmp_path / "classifier")
    net = load_network(tmp_path / "classifier")
    assert type(net) is PosterClassifier and net.primary == 0 and net.embed_dim == 128
    assert len(net.feature_maps(torch.rand(1, 3, 96, 64))) == 1


@needs_data
def test_ensemble_stage_compares_with_a_bootstrap_and_ships(tmp_path):
    folders = []
    for k, m in enumerate(members()):
        folders.append(str(hub.save_checkpoint(m, tmp_path / f"m{k}")))
    cmd = [sys.executable, str(ROOT / "train" / "train_classifier.py"), "--data", str(DATA), "--ensemble", *folders,
           "--val-limit", "40", "--train-limit", "24", "--bootstrap", "30", "--threads", "1",
           "--work", str(tmp_path / "run"), "--finish"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["mAP_by_weight"]) == {str(round(w / 10, 1)) for w in range(11)}
    assert metrics["weight"] in [round(w / 10, 1) for w in range(11)]
    boot = metrics["bootstrap_ensemble_minus_first"]["mAP"]
    assert boot["lo"] <= boot["mean"] <= boot["hi"]
    assert len(metrics["held_out_halves"]) == 2
    clf = Classifier.load(directory=tmp_path / "run" / "checkpoint")
    assert isinstance(clf.model, PosterEnsemble) and len(load_index(tmp_path / "run" / "checkpoint").ids) == 24
    assert clf.analyze(Image.new("RGB", (182, 268)), k=3).similar
    assert "bootstrap" in (tmp_path / "run" / "checkpoint" / "README.md").read_text()


def test_dreams_and_generation_guidance_differentiate_the_primary_member_only():
    """The gradient-heavy uses (genre / deep dreams, the latent engine's classifier guidance) run through the
    primary member at its own input size; one network is its own primary."""
    from poster_studio.dream.service import Dreamer
    from poster_studio.generate.guidance import ClassifierGuidance

    a, b = members()
    for primary in (0, 1):
        clf = Classifier(PosterEnsemble.of([a, b], primary=primary).eval())
        want = clf.model.members[primary]
        assert Dreamer(clf).model is want and ClassifierGuidance(clf).model is want
        assert Dreamer(clf).model.image_size == [a, b][primary].image_size
    assert a.primary_network is a and Dreamer(Classifier(a)).model is a
