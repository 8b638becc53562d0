"""Upscaler: the network (untrained = bicubic), the service (sizes, passes, typed errors), checkpoints through the
hub, the degradation model, evaluation, the CLI, and the training script (loss goes down, resumable run).

Everything runs on tiny synthetic pictures and narrow networks (no poster folder, no trained checkpoint).
"""
from __future__ import annotations

import csv
import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poster_studio import genres as G
from poster_studio import hub
from poster_studio.errors import CheckpointError, InvalidArgumentError, InvalidImageError
from poster_studio.images import image_notes, to_pil, to_tensor
from poster_studio.upscale import Degradation, PosterUpscaler, Upscaler, bicubic_downscale
from poster_studio.upscale.degrade import crop_to_multiple
from poster_studio.upscale.evaluate import evaluate_upscaler, feature_distance, psnr
from poster_studio.upscale.model import bicubic_upsample

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "train")

torch.set_num_threads(1)


def _poster(seed: int, w: int = 48, h: int = 72) -> Image.Image:
    """Smooth gradients, stripes and a sharp-edged box: something a super-resolution network can learn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.2, 0.9, 3)
    a = np.stack([120 + 90 * np.sin(xx * f[c] + yy * f[(c + 1) % 3]) for c in range(3)], -1)
    x0, y0 = rng.integers(2, w // 2), rng.integers(2, h // 2)
    a[y0:y0 + h // 3, x0:x0 + w // 3] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _tiny(seed: int = 0, **kw) -> PosterUpscaler:
    torch.manual_seed(seed)
    return PosterUpscaler(**{"channels": 4, "layers": 1, **kw})


def _trained_like(seed: int = 0) -> PosterUpscaler:
    """A tiny network whose residual is not zero (as after training)."""
    net = _tiny(seed)
    with torch.no_grad():
        net.body[-2].weight.normal_(0, 0.05)
    return net


def _data_folder(root: Path, n_train: int = 6, n_val: int = 2) -> Path:
    data = root / "posters"
    (data / "images").mkdir(parents=True)
    with open(data / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "year", "genres", "split"])
        for i in range(n_train + n_val):
            split = "train" if i < n_train else "val"
            w.writerow([f"p{i}", f"P{i}", "2000", G.GENRES[i % 7], split])
            _poster(i).save(data / "images" / f"p{i}.jpg", quality=95)
    return data


def _train_module():
    if TRAIN not in sys.path:
        sys.path.insert(0, TRAIN)
    return importlib.import_module("train_upscaler")


# ------------------------------------------------------------------------------------------- network
@pytest.mark.parametrize("scale", [2, 3])
def test_untrained_network_is_bicubic(scale):
    x = to_tensor(_poster(1))[None]
    out = _tiny(scale=scale)(x)
    assert out.shape == (1, 3, 72 * scale, 48 * scale)
    assert torch.equal(out, bicubic_upsample(x, scale))


def test_network_config_is_checked():
    with pytest.raises(ValueError):
        PosterUpscaler(scale=1)


# ------------------------------------------------------------------------------------------- service
def test_upscale_sizes_and_passes():
    up = Upscaler(_trained_like())
    img = _poster(2, 60, 90)
    assert up.upscale(img).size == (400, 600)                  # default size: x8 (x4 leaves 1.67x), then Lanczos
    assert up.passes((60, 90), (400, 600)) == 3
    assert up.passes((100, 150), (400, 600)) == 2
    assert up.passes((182, 268), (400, 600)) == 1               # a poster thumbnail to 400x600: one pass
    assert up.passes((182, 268), (200, 300)) == 0               # close enough: Lanczos only
    assert up.upscale(img, "120x180").size == (120, 180)
    assert up.upscale(img, (30, 45)).size == (30, 45)           # smaller: only resized
    assert image_notes(up.upscale(img, (120, 180))) == []
    stretched = up.upscale(img, (180, 180))
    assert stretched.size == (180, 180) and "stretched" in image_notes(stretched)[0]


def test_untrained_service_upscale_equals_bicubic():
    img = _poster(3)
    out = Upscaler(_tiny()).upscale(img, (96, 144))             # exactly x2: one pass, no final resize
    expected = to_pil(bicubic_upsample(to_tensor(img)[None], 2).clamp(0, 1))
    assert np.array_equal(np.asarray(out), np.asarray(expected))


def test_bad_inputs_raise_typed_one_line_errors(tmp_path):
    up = Upscaler(_tiny())
    img = _poster(4)
    (tmp_path / "notes.png").write_bytes(b"just text, not a picture\n" * 10)
    cases = [
        (dict(image=None), InvalidImageError, "No image"),
        (dict(image=b"not an image at all" * 5), InvalidImageError, "not an image"),
        (dict(image=tmp_path / "notes.png"), InvalidImageError, "not an image"),
        (dict(image=tmp_path / "missing.png"), InvalidImageError, "not found"),
        (dict(image=img, size=0), InvalidArgumentError, "WxH"),
        (dict(image=img, size=(0, 600)), InvalidArgumentError, "from 16 to 2048"),
        (dict(image=img, size=5000), InvalidArgumentError, "WxH"),
        (dict(image=img, size="5000x5000"), InvalidArgumentError, "from 16 to 2048"),
        (dict(image=img, size="big"), InvalidArgumentError, "WxH"),
    ]
    for kwargs, error, fragment in cases:
        with pytest.raises(error) as exc:
            up.upscale(**kwargs)
        msg = str(exc.value)
        assert fragment in msg and "\n" not in msg, (kwargs, msg)


# ------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    net = _trained_like(seed=5)
    folder = hub.save_checkpoint(net, tmp_path / "upscaler", metrics={"network_psnr_db": 30.0})
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "config.json").read_text()) == {"scale": 2, "channels": 4, "layers": 1}
    up = Upscaler.load(directory=folder)
    x = to_tensor(_poster(5))[None]
    with torch.no_grad():
        assert torch.equal(up.net(x), net(x))
        assert not torch.equal(net(x), bicubic_upsample(x, 2))
    with pytest.raises(CheckpointError):
        Upscaler.load(directory=tmp_path / "nothing-here")


# ------------------------------------------------------------------------------------------- degradation
@pytest.mark.parametrize("scale", [2, 3])
def test_degradation_sizes_and_determinism(scale):
    hr = to_tensor(_poster(6, 48, 72))
    deg = Degradation(scale=scale)
    outs = [deg(hr, torch.Generator().manual_seed(s)) for s in range(8)]
    for lr in outs:
        assert lr.shape == (3, 72 // scale, 48 // scale) and lr.dtype == torch.float32
        assert 0.0 <= float(lr.min()) and float(lr.max()) <= 1.0
    assert torch.equal(outs[0], deg(hr, torch.Generator().manual_seed(0)))   # a function of the seed
    assert not all(torch.equal(outs[0], o) for o in outs[1:])                 # random otherwise
    lr = bicubic_downscale(_poster(6, 49, 73), scale)
    assert lr.size == (49 // scale, 73 // scale)
    assert crop_to_multiple(_poster(6, 49, 73), scale).size == (49 // scale * scale, 73 // scale * scale)


# ------------------------------------------------------------------------------------------- evaluation
def test_metrics():
    x = to_tensor(_poster(7))
    assert psnr(x, x) == math.inf
    assert abs(psnr(x, (x + 0.1).clamp(0, 1)) - psnr(x, (x - 0.1).clamp(0, 1))) < 3
    assert abs(psnr(torch.zeros(3, 8, 8), torch.full((3, 8, 8), 0.1)) - 20.0) < 1e-6
    d = feature_distance(torch.stack([x, x]), torch.stack([x, x.flip(-1)]))
    assert d.shape == (2,) and float(d[0]) == pytest.approx(0.0, abs=1e-5) and float(d[1]) > 0.01


def test_evaluate_upscaler_on_synthetic_posters(tmp_path):
    res = evaluate_upscaler([_poster(8, 49, 73), _poster(9)], upscaler=Upscaler(_tiny()), save_dir=tmp_path)
    assert res["images"] == 2 and res["scale"] == 2
    for m in ("lanczos", "bicubic", "network"):
        r = res["methods"][m]
        assert 10 < r["psnr_db"] < 60 and r["vgg_distance"] > 0 and r["seconds_per_image"] >= 0
    assert res["psnr_gain_over_lanczos_db"] == pytest.approx(
        res["methods"]["network"]["psnr_db"] - res["methods"]["lanczos"]["psnr_db"], abs=2e-3)
    assert len(list(tmp_path.glob("*.png"))) == 6
    json.dumps(res)


# ------------------------------------------------------------------------------------------- CLI
def test_cli_upscale_and_evaluate(tmp_path, capsys):
    from poster_studio.cli import main

    ck = hub.save_checkpoint(_trained_like(), tmp_path / "upscaler")
    _poster(10).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "--size", "100x150", "--out", str(tmp_path / "out.png"),
                 "--checkpoint", str(ck)]) == 0
    assert Image.open(tmp_path / "out.png").size == (100, 150)
    data = _data_folder(tmp_path, n_train=1, n_val=2)
    capsys.readouterr()
    assert main(["evaluate-upscaler", "--data", str(data), "--n", "2", "--checkpoint", str(ck),
                 "--json-out", str(tmp_path / "eval.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["images"] == 2 and json.loads((tmp_path / "eval.json").read_text()) == printed
    (tmp_path / "bad.png").write_text("<html>")
    assert main(["upscale", str(tmp_path / "bad.png"), "--out", str(tmp_path / "x.png"), "--checkpoint", str(ck)]) == 2
    assert main(["upscale", str(tmp_path / "in.png"), "--size", "0x0", "--out", str(tmp_path / "y.png"),
                 "--checkpoint", str(ck)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


# ------------------------------------------------------------------------------------------- training
def test_training_steps_reduce_l1(tmp_path):
    tu = _train_module()
    data = _data_folder(tmp_path, n_train=4, n_val=0)
    args = tu.parse_args(["--data", str(data), "--batch", "4", "--patch", "32"])
    from poster_studio.data import PosterDataset

    ds = PosterDataset(data / "images", data / "labels.csv", split="train")
    lr, hr = tu.make_batch(ds, 0, args, Degradation(scale=2))
    assert lr.shape == (4, 3, 16, 16) and hr.shape == (4, 3, 32, 32)
    torch.manual_seed(0)
    net = PosterUpscaler(channels=16, layers=2)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = [tu.train_step(net, opt, lr, hr) for _ in range(60)]   # overfit one batch
    assert losses[0] == pytest.approx(float((bicubic_upsample(lr, 2) - hr).abs().mean()), rel=1e-5)
    assert min(losses[-5:]) < 0.85 * losses[0], losses[::10]


def test_training_script_resumes_and_writes_checkpoint(tmp_path, capsys):
    tu = _train_module()
    data = _data_folder(tmp_path)

    def run(name, steps, eval_n=0):
        return tu.train(tu.parse_args([
            "--data", str(data), "--out", str(tmp_path / name / "run"), "--checkpoint", str(tmp_path / name / "ck"),
            "--steps", str(steps), "--batch", "2", "--patch", "24", "--channels", "4", "--layers", "1",
            "--save-every", "1", "--log-every", "2", "--eval", str(eval_n), "--threads", "1"]))

    run("straight", 4)
    run("interrupted", 2)              # "killed" after step 2 (state saved every step)
    ck = run("interrupted", 4, eval_n=2)  # the same command again: resumes at step 2, then evaluates
    assert "resumed from step 2" in capsys.readouterr().out
    from poster_studio.training import load_state

    a = load_state(tmp_path / "straight" / "run" / "state.safetensors")
    b = load_state(tmp_path / "interrupted" / "run" / "state.safetensors")
    assert b["step"] == 4 and b["history"].shape == (4, 2)
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-6), k
    assert {"config.json", "model.safetensors", "README.md", "metrics.json"} <= {p.name for p in ck.iterdir()}
    card = (ck / "README.md").read_text()
    assert "network_psnr_db" in card and "lanczos_psnr_db" in card
    assert json.loads((tmp_path / "interrupted" / "run" / "eval.json").read_text())["images"] == 2
    assert Upscaler.load(directory=ck).upscale(_poster(11)).size == (400, 600)
    with pytest.raises(SystemExit):     # a state of another network is refused, not silently mixed
        tu.train(tu.parse_args(["--data", str(data), "--out", str(tmp_path / "straight" / "run"),
                                "--checkpoint", str(tmp_path / "x"), "--steps", "5", "--channels", "8",
                                "--layers", "1", "--eval", "0"]))
