"""The translate engine (issue 14): the networks (shape, range, identity at init, genre conditioning, hub round trip,
arch dispatch), the training script (losses fall on a tiny synthetic set, exact resume, the CycleGAN baseline,
export with a model card), the engine through GenreTransfer (size, strength, genre and missing-model messages,
the optional learned upscaler), the CLI, evaluate_translate and the tab's note.

Everything runs on tiny synthetic data: red "Comedy" and blue "Horror_Thriller" posters, width-4/8 networks at
32x48, a width-4 AdaIN decoder with made-up exemplar statistics (no poster folder, no trained checkpoint).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poster_studio import genres as G
from poster_studio import hub
from poster_studio.errors import CheckpointError, InvalidArgumentError
from poster_studio.images import fit_image, image_notes
from poster_studio.training import load_state
from poster_studio.transfer import (AdaINDecoder, CycleGANPair, ExemplarBank, GenreTransfer, GenreTranslator,
                                    PatchDiscriminator, load_translator)
from poster_studio.transfer.style import STAT_LAYERS, GenreStyle

ROOT = Path(__file__).resolve().parents[1]
PAIR = ("Comedy", "Horror_Thriller")
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}

torch.set_num_threads(1)


def _poster(blue: bool, seed: int, w: int = 40, h: int = 60) -> Image.Image:
    a = np.random.default_rng(seed).uniform(0, 60, (h, w, 3))
    a[..., 2 if blue else 0] += 180
    return Image.fromarray(a.clip(0, 255).astype(np.uint8))


def _data(root: Path, n_train: int = 20, n_val: int = 4) -> Path:
    """Red Comedy and blue Horror_Thriller posters with a train/val split."""
    (root / "images").mkdir(parents=True)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title", "year", "genres", "split"])
        for i in range(n_train + n_val):
            _poster(i % 2 == 1, i).save(root / "images" / f"p{i:03d}.jpg")
            w.writerow([f"p{i:03d}", f"T{i}", "2000", PAIR[i % 2], "train" if i < n_train else "val"])
    return root


def _tiny(genres=PAIR, seed: int = 0) -> GenreTranslator:
    """A tiny translator of the residual design (no colour grade) whose last conv is not zero, so that it does
    something."""
    torch.manual_seed(seed)
    net = GenreTranslator(genres=genres, size=(32, 48), width=4, n_res=1, embed_dim=8, grade=False)
    torch.nn.init.normal_(net.decoder[-1].weight, std=0.3)
    return net.eval()


def _grader(seed: int = 0) -> GenreTranslator:
    """A tiny grade-only translator (the shipped design) that does something: random per-cell coefficients, and
    a global grade that adds 0.3 to red for Comedy and takes 0.3 from every channel for Horror_Thriller."""
    torch.manual_seed(seed)
    net = GenreTranslator(genres=PAIR, size=(32, 48), width=4, n_res=1, embed_dim=8, max_delta=0.0)
    torch.nn.init.normal_(net.grade_out.weight, std=0.05)
    with torch.no_grad():
        net.grade_global.weight[0, 9] = 0.3
        net.grade_global.weight[1, 9:] = -0.3
    return net.eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _data(tmp_path_factory.mktemp("posters"))


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """checkpoints/transfer (width-4 decoder, made-up exemplar statistics) and checkpoints/translator (tiny)."""
    root = tmp_path_factory.mktemp("checkpoints")
    g = torch.Generator().manual_seed(0)
    styles = {genre: GenreStyle(genre, [{"id": "p000", "title": "T0", "year": "2000", "weight": 1.0}],
                                {l: torch.rand(CHANNELS[l], generator=g) for l in STAT_LAYERS},
                                {l: torch.rand(CHANNELS[l], generator=g) + 0.1 for l in STAT_LAYERS},
                                pixel_mean=torch.tensor([0.5, 0.2, 0.2]), pixel_cov=torch.eye(3) * 0.01)
              for genre in G.GENRES}
    torch.manual_seed(0)
    hub.save_checkpoint(AdaINDecoder(width=4), root / "transfer", extra_files=ExemplarBank(styles).files())
    hub.save_checkpoint(_tiny(), root / "translator")
    return root


@pytest.fixture(scope="module")
def gt(ckpts):
    gt = GenreTransfer.load(directory=ckpts / "transfer", translator_directory=ckpts / "translator",
                            bridge_directory=ckpts / "no-generator")  # the bridge's engine list: test_bridge.py
    gt.upscaler = None  # Lanczos, whether or not checkpoints/upscaler is there (see the upscaler test)
    return gt


# ------------------------------------------------------------------------------------------- networks
def test_generator_shape_range_and_identity_at_init():
    torch.manual_seed(0)
    net = GenreTranslator(size=(32, 48), width=4, n_res=2, embed_dim=8)
    x = torch.rand(3, 3, 48, 32) * 2 - 1
    y = net(x, torch.tensor([0, 3, 6]))
    assert y.shape == x.shape and torch.equal(y, x)  # residual output, last conv at zero: the identity
    x = torch.rand(2, 3, 60, 40) * 2 - 1  # fully convolutional: another size divisible by 4
    y = _tiny(G.GENRES)(x, torch.tensor([1, 2]))
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1 and not torch.equal(y, x)


def test_grade_only_translator_regrades_colours_and_applies_them_at_full_size():
    """max_delta=0: no decoder, G only regrades: the identity at init; a global grade is an exact affine map of each
    pixel's colour; `full=` applies the coefficients (found at the native size) to a larger picture's own pixels,
    so its 1-pixel detail stays."""
    torch.manual_seed(0)
    net = GenreTranslator(genres=PAIR, size=(32, 48), width=4, n_res=1, embed_dim=8, max_delta=0.0)
    assert net.decoder is None and net.grade
    x = torch.rand(2, 3, 48, 32) * 1.2 - 0.6
    with torch.no_grad():
        assert torch.equal(net(x, torch.tensor([0, 1])), x)
        net.grade_global.weight[0, 9] = 0.3  # Comedy: red + 0.3
        net.grade_global.weight[1, :9] = torch.eye(3).flatten() * -0.5  # Horror: every channel halved
        y = net(x, torch.tensor([0, 1]))
    assert torch.allclose(y[0], (x[0] + torch.tensor([0.3, 0, 0])[:, None, None]).clamp(-1, 1), atol=1e-6)
    assert torch.allclose(y[1], 0.5 * x[1], atol=1e-6)
    big = torch.rand(1, 3, 192, 128) * 1.2 - 0.6
    big = big + 0.3 * ((torch.arange(128) % 2) - 0.5)  # 1-pixel stripes: gone at 32x48
    small = torch.nn.functional.interpolate(big, size=(48, 32), mode="area")
    with torch.no_grad():
        out = net(small, torch.tensor([1]), full=big)
    assert out.shape == big.shape and torch.allclose(out, (0.5 * big).clamp(-1, 1), atol=1e-6)
    g = _grader()
    with torch.no_grad():
        a, b = g(small, torch.tensor([0])), g(small, torch.tensor([1]))
        full = g(small, torch.tensor([0]), full=big)
    assert (a - b).abs().mean() > 0.1  # the genre matters
    assert (a[:, 0] - small[:, 0]).mean() > 0.2  # Comedy's red
    assert full.diff(dim=3).abs().mean() > 0.8 * big.diff(dim=3).abs().mean()  # the stripes stay
    with pytest.raises(ValueError, match="needs the colour grade"):
        GenreTranslator(size=(32, 48), width=4, n_res=1, max_delta=0.0, grade=False)


def test_grade_bins_give_a_tone_curve_and_the_bound_holds():
    """grade_bins > 1: the coefficients depend on the pixel's luma (a tone curve per cell), linear between the
    bins: a dark pixel follows the first bin's matrix, a bright one the last's; the identity at init all the same.
    grade_bound: no coefficient leaves (-B, B), however large the raw one. raw=True: the result before its clamp
    and the coefficients on their grid (what the overflow and smoothness terms of the training see)."""
    torch.manual_seed(0)
    net = GenreTranslator(genres=PAIR, size=(32, 48), width=4, n_res=1, embed_dim=8, max_delta=0.0, grade_bins=3,
                          grade_bound=0.5)
    dark, mid, bright = (torch.full((1, 3, 48, 32), v) for v in (-1.0, -0.5, 1.0))  # luma 0, 0.25, 1
    x = torch.cat([dark, mid, bright])
    t = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(net(x, t), x)
        coef = net.grade_global.weight.view(2, 3, 12)
        coef[0, 0, 9], coef[0, 2, 9] = 0.2, -0.3  # Comedy: dark bin's red + 0.2, bright bin's red - 0.3
        coef[1, :, 10] = 5.0  # Horror: green + 5, bounded to 0.5
        y = net(x, t)
        out, grid = net(x, torch.tensor([0, 1, 1]), raw=True)
    lo, hi = (0.5 * np.tanh(v / 0.5) for v in (0.2, -0.3))  # the bounded coefficients
    assert y[0, 0].mean().item() == pytest.approx(-1 + lo, abs=1e-5)  # dark: the first bin
    assert y[1, 0].mean().item() == pytest.approx(-0.5 + lo / 2, abs=1e-5)  # luma 0.25: halfway to the middle bin (0)
    assert y[2, 0].mean().item() == pytest.approx(1 + hi, abs=1e-5)  # bright: the last bin
    assert torch.equal(y[:, 1:], x[:, 1:])  # the other channels untouched
    assert grid.shape == (3, 3, 12, 3, 2) and grid.abs().max() <= 0.5 and grid[1:, :, 10].min() > 0.49
    assert out[2, 1].mean().item() == pytest.approx(1.5, abs=1e-3)  # bright green + 0.5, before the clamp
    with pytest.raises(ValueError, match="grade_bins"):
        GenreTranslator(size=(32, 48), width=4, n_res=1, max_delta=0.0, grade_bins=0)


def test_genre_conditioning_changes_the_output():
    net = _tiny()
    x = (torch.rand(1, 3, 48, 32) * 2 - 1).repeat(2, 1, 1, 1)
    with torch.no_grad():
        y = net(x, torch.tensor([0, 1]))
        again = net(x, torch.tensor([0, 1]))
    assert (y[0] - y[1]).abs().mean() > 1e-3
    assert torch.equal(y, again)


def test_patch_discriminator_and_cyclegan_pair():
    d = PatchDiscriminator(outputs=7, width=4)
    x = torch.rand(2, 3, 48, 32) * 2 - 1
    maps = d.eval()(x)
    assert maps.shape[:2] == (2, 7)
    picked = d(x, torch.tensor([5, 2]))
    assert torch.allclose(picked[0], maps[0, 5]) and torch.allclose(picked[1], maps[1, 2])
    assert PatchDiscriminator(1, width=4, norm="instance")(x).shape[1] == 1
    torch.manual_seed(0)
    pair = CycleGANPair(genres=("comedy", "horror"), size=(32, 48), width=4, n_res=1).eval()
    assert pair.genres == PAIR
    with torch.no_grad():
        y = pair(x, torch.tensor([1, 0]))
        assert torch.allclose(y[0], pair.nets[1](x[:1])[0], atol=1e-6) and torch.allclose(y[1], pair.nets[0](x[1:])[0],
                                                                                            atol=1e-6)
    with pytest.raises(ValueError):
        CycleGANPair(genres=("Comedy", "Comedy"))


def test_checkpoints_round_trip_via_hub_for_both_archs(tmp_path, monkeypatch):
    net = _tiny()
    hub.save_checkpoint(net, tmp_path / "translator")
    monkeypatch.setenv(hub.CHECKPOINTS_ENV, str(tmp_path))
    monkeypatch.delenv(hub.HUB_REPO_ENV, raising=False)
    loaded = load_translator()  # checkpoints/translator
    assert type(loaded) is GenreTranslator and loaded.genres == PAIR and loaded.size == (32, 48)
    assert json.loads((tmp_path / "translator" / "config.json").read_text())["arch"] == "stargan"
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    hub.save_checkpoint(CycleGANPair(size=(32, 48), width=4, n_res=1), tmp_path / "pair")
    assert type(load_translator(tmp_path / "pair")) is CycleGANPair
    (tmp_path / "pair" / "config.json").write_text(json.dumps({"arch": "pix2pix"}))
    with pytest.raises(CheckpointError, match="Unknown translator arch 'pix2pix'"):
        load_translator(tmp_path / "pair")
    with pytest.raises(CheckpointError, match="Missing checkpoint file"):
        load_translator(tmp_path / "nothing")


# ------------------------------------------------------------------------------------------- training
def _trainer():
    if str(ROOT / "train") not in sys.path:
        sys.path.insert(0, str(ROOT / "train"))
    import train_translator

    return train_translator


def _train_args(data: Path, tmp: Path, run: str, *extra: str) -> list[str]:
    return ["--data", str(data), "--cache", str(tmp / "cache"), "--out", str(tmp / run), "--size", "32x48",
            "--width", "8", "--d-width", "8", "--n-res", "1", "--batch", "4", "--genres", *PAIR, "--no-tqdm",
            "--lr-g", "2e-3", "--lr-d", "2e-3", "--save-every", "1", "--sample-every", "10", "--checkpoint-every",
            "100", "--content", "none", *extra]


def test_training_steps_reduce_the_losses_and_export_a_checkpoint(data, tmp_path):
    tt = _trainer()
    res = tt.main(_train_args(data, tmp_path, "run", "--steps", "30"))
    h = res["history"]
    assert len(h["d_loss"]) == 30 and res["domains"] == {"Comedy": 10, "Horror_Thriller": 10}
    # D learns to tell red Comedy from blue Horror on their own maps; G's regrade makes its fakes read as the target
    assert np.mean(h["d_loss"][-10:]) < 0.6 * np.mean(h["d_loss"][:10])
    assert np.mean(h["cls_fake"][-10:]) < 0.2 * np.mean(h["cls_fake"][:10])
    # the critic's genre head (StarGAN's auxiliary classifier), fit before the first step on the frozen Lite1
    # features of the reals, tells red Comedy from blue Horror from the start
    assert np.mean(h["cls_real"][:10]) < 0.3 * np.log(2)
    run = tmp_path / "run"
    for f in ("samples_latest.png", "samples/step_000010.png", "loss.png", "checkpoint/config.json"):
        assert (run / f).is_file(), f
    with Image.open(run / "samples_latest.png") as im:  # rows: 2 val posters per genre; columns: input + 2 targets
        assert im.size == (2 + 3 * 34, 2 + 4 * 50)
    assert load_translator(run / "checkpoint").genres == PAIR
    ev = {"average": {"translate": {"hit_rate": 0.5, "ssim": 0.6, "kid": 0.1}, "fast": {"hit_rate": 0.25}},
          "genres": {"Comedy": {"translate": {"hit_rate": 0.5}}}}
    (tmp_path / "translate-eval.json").write_text(json.dumps(ev))
    ev2 = {"engine": "translate", "average": {"hit_rate": 0.3, "hit_rate_probe": 0.34, "ssim": 0.8, "blotches": 0.001},
           "genres": {"Comedy": {"hit_rate": 0.2, "hit_rate_probe": 0.1}}}  # evaluate-transfer's format
    (tmp_path / "transfer-eval.json").write_text(json.dumps(ev2))
    tt.main(["--out", str(run), "--export", str(tmp_path / "exported"), "--metrics",
             str(tmp_path / "translate-eval.json"), str(tmp_path / "transfer-eval.json")])
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "| translate-eval | translate | 0.500 | n/a | 0.600 | n/a | 0.100 | n/a |" in card and "30 steps" in card
    assert "| transfer-eval | translate | 0.300 | 0.340 | 0.800 | n/a | n/a | 0.001 |" in card
    exported = json.loads((tmp_path / "exported" / "metrics.json").read_text())
    assert exported["transfer-eval/translate/hit_rate_per_genre"] == {"Comedy": 0.2}
    # an earlier checkpoint of the run ships the same way (its training.json says how it was trained)
    meta = tt.main(["--out", str(run), "--export", str(tmp_path / "earlier"), "--from-checkpoint",
                    str(run / "checkpoint"), "--card-note", "The genre weight was raised at a resume."])
    assert meta["step"] == 30
    card = (tmp_path / "earlier" / "README.md").read_text()
    assert "30 steps" in card and "The genre weight was raised at a resume." in card
    a, b = load_translator(run / "checkpoint"), load_translator(tmp_path / "earlier")
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert json.loads((tmp_path / "exported" / "metrics.json").read_text())["translate-eval/fast/hit_rate"] == 0.25
    assert (tmp_path / "exported" / "evaluation.json").is_file()
    assert not (tmp_path / "exported" / "samples.png").exists()  # sample grids show posters: not shipped


@pytest.mark.parametrize("clip", [0.0, 20.0])
def test_overflow_term_pulls_clipped_colours_back(data, tmp_path, clip):
    """--lambda-clip: a grade that pushes every colour past white (+0.8 on a bright picture) is pulled back
    within a few G steps when the overflow term is on, and not when it is off (the smoothness term alone)."""
    tt = _trainer()
    args = tt.parse_args(_train_args(data, tmp_path, "clip", "--grade-bins", "2", "--lambda-clip", str(clip),
                                     "--lambda-tv", "1", "--lambda-cls", "0", "--lr-g", "2e-2", "--steps", "1"))
    torch.manual_seed(0)
    G_net, D_net = tt.make_models(args)
    with torch.no_grad():
        G_net.grade_global.weight[:, 9:12] = 0.8  # both bins: every channel + 0.8
        G_net.grade_global.weight[:, 21:24] = 0.8
    opts = (torch.optim.Adam(G_net.parameters(), lr=args.lr_g, betas=(0.5, 0.999)),
            torch.optim.Adam([p for p in D_net.parameters() if p.requires_grad], lr=args.lr_d))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 48, 32, generator=g) * 0.6 + 0.4  # bright
    s, t = torch.tensor([0, 1, 0, 1]), torch.tensor([1, 0, 1, 0])
    real = torch.rand(4, 3, 48, 32, generator=g) * 2 - 1
    first = tt.stargan_step((G_net, D_net), opts, (x, s, t, real, 0), args, g)
    for _ in range(15):
        last = tt.stargan_step((G_net, D_net), opts, (x, s, t, real, 0), args, g)
    assert first["overflow"] > 0.3 and "tv" in last
    if clip:
        assert last["overflow"] < 0.3 * first["overflow"]
    else:
        assert last["overflow"] > 0.6 * first["overflow"]


def test_training_takes_photo_crops_and_logs_the_images_seen(data, tmp_path, capsys):
    """Content photos join the inputs (and the sample grid); the log counts what the run saw; the critic is the
    projected one on frozen Lite1 (only its heads trained)."""
    content = tmp_path / "content"
    content.mkdir()
    for i in range(2):
        Image.fromarray(np.full((70, 90, 3), 60 + 100 * i, np.uint8)).save(content / f"photo{i}.png")
    tt = _trainer()
    res = tt.main(_train_args(data, tmp_path, "photos", "--width", "4", "--d-width", "4", "--steps", "2",
                              "--log-every", "1", "--content", str(content), "--crops", "3", "--photo-share", "0.5"))
    out = capsys.readouterr().out
    assert "inputs: 20 posters + 6 photo crops (2 a batch)" in out and "critic: projected" in out
    assert "step 2 " in out and "4 posters, 4 photo crops) and 8 real posters judged" in out
    fit = float(out.split("genre head fit on 20 real posters' frozen features: loss ")[1].split()[0])
    assert fit < 0.5 * np.log(2)  # red vs blue: well below chance (0.693), said in the log
    assert res["step"] == 2
    with Image.open(tmp_path / "photos" / "samples_latest.png") as im:  # 4 val posters + 2 photos
        assert im.size == (2 + 3 * 34, 2 + 6 * 50)
    st = load_state(tmp_path / "photos" / "state.safetensors")
    assert any(k.startswith("heads.") for k in st["D"]) and any(k.startswith("stages.") for k in st["D"])
    assert "genre_head.weight" in st["D"] and json.loads(st["train_args"])["lambda_cls"] == 1.0
    assert len(st["opt_d"]["state"]) < len(st["D"])  # the frozen backbone has no optimiser state
    card = (tmp_path / "photos" / "checkpoint" / "README.md").read_text()
    assert "2 of each batch of 4: random 2:3 crops of the content photos" in card and "EfficientNet-Lite1" in card
    assert "auxiliary genre classifier" in card and "genre classification 1.0" in card


@pytest.mark.parametrize("arch", ["stargan", "cyclegan"])
def test_training_resumes_exactly(data, tmp_path, arch):
    tt = _trainer()
    args = ["--arch", arch, "--width", "4", "--d-width", "4", "--batch", "2", "--decay", "0", "--pool", "3"]
    tt.main(_train_args(data, tmp_path, "straight", *args, "--steps", "4"))
    tt.main(_train_args(data, tmp_path, "resumed", *args, "--steps", "2"))  # "killed" after step 2
    tt.main(_train_args(data, tmp_path, "resumed", *args, "--steps", "4"))  # same command: goes on from step 2
    a, b = (load_state(tmp_path / run / "state.safetensors") for run in ("straight", "resumed"))
    assert b["step"] == 4 and len(b["history"]["d_loss"]) == 4
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert type(load_translator(tmp_path / "resumed" / "checkpoint")) is (GenreTranslator if arch == "stargan"
                                                                          else CycleGANPair)


# ------------------------------------------------------------------------------------------- the engine
def test_translate_engine_size_strength_and_notes(gt):
    poster = _poster(False, 1, 90, 120)  # not 2:3
    out = gt.transfer(poster, "horror", engine="translate", size=(256, 384))
    assert out.size == (256, 384) and out.mode == "RGB"
    notes = image_notes(out)
    assert any("centre-cropped" in n for n in notes)
    assert ("The translate engine works at 32x48: its change to your picture was enlarged to 256x384 and added to "
            "the picture itself.") in notes
    fitted = fit_image(poster, (64, 96))
    same = gt.transfer(poster, "Horror & Thriller", engine="translate", size=(64, 96), strength=0.0)
    assert np.array_equal(np.asarray(same), np.asarray(fitted))
    full = np.asarray(gt.transfer(poster, "horror", engine="translate", size=(64, 96)), dtype=np.float32)
    half = np.asarray(gt.transfer(poster, "horror", engine="translate", size=(64, 96), strength=0.5), np.float32)
    assert np.abs(full - np.asarray(fitted, np.float32)).mean() > 2
    assert np.abs(half - (full + np.asarray(fitted, np.float32)) / 2).max() <= 2
    other = np.asarray(gt.transfer(poster, "comedy", engine="translate", size=(64, 96)), np.float32)
    assert np.abs(other - full).mean() > 0.5  # the target genre matters
    assert gt.transfer(poster, "comedy", size=(64, 96)).size == (64, 96)  # the fast engine still works beside it


def test_translate_engine_messages(gt, ckpts, tmp_path):
    poster = _poster(True, 2)
    assert gt.translate_genres == PAIR
    with pytest.raises(InvalidArgumentError) as e:
        gt.transfer(poster, "Drama", engine="translate")
    assert str(e.value) == "The translate engine reaches Comedy and Horror_Thriller, not Drama."
    with pytest.raises(InvalidArgumentError, match="Unknown genre 'western': the translate engine reaches Comedy and "
                                                   "Horror_Thriller."):
        gt.check_inputs(content=poster, genre="western", engine="translate")
    with pytest.raises(InvalidArgumentError, match="Choose the genre to translate to"):
        gt.check_inputs(content=poster, genre="", engine="translate")
    with pytest.raises(InvalidArgumentError, match="takes a genre, not style images"):
        gt.check_inputs(content=poster, genre="comedy", engine="translate", style_images=[poster])
    assert gt.check_inputs(content=poster, genre="comedy", engine="Translate")["engine"] == "translate"
    missing = GenreTransfer.load(directory=ckpts / "transfer", translator_directory=tmp_path / "none")
    assert missing.translate_genres == () and missing.transfer(poster, "drama", size=(64, 96)).size == (64, 96)
    with pytest.raises(CheckpointError) as e:
        missing.transfer(poster, "comedy", engine="translate")
    assert str(e.value).startswith("The translate engine is not installed: train it with python "
                                   "train/train_translator.py")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"garbage")
    broken = GenreTransfer.load(directory=ckpts / "transfer", translator_directory=tmp_path / "broken")
    with pytest.raises(CheckpointError, match="could not be loaded .* retrain or re-export it"):
        broken.check_inputs(content=poster, genre="comedy", engine="translate")
    with pytest.raises(InvalidArgumentError, match="Engine must be one of fast, quality, translate"):
        gt.check_inputs(content=poster, genre="comedy", engine="slow")


def test_translate_engine_uses_the_learned_upscaler_when_there_is_one(ckpts):
    class Upscaler:
        calls = []

        def upscale(self, img, size):
            self.calls.append((img.size, size))
            return img.resize(size, Image.Resampling.NEAREST)

    gt = GenreTransfer(AdaINDecoder(width=4), translator=_tiny(), upscaler=Upscaler())
    residual = gt.transfer(_poster(False, 3), "comedy", engine="translate", size=(256, 384))
    assert Upscaler.calls == [] and "added to the picture itself" in image_notes(residual)[-1]
    gt.TRANSLATE_ENLARGE = "upscale"
    out = gt.transfer(_poster(False, 3), "comedy", engine="translate", size=(256, 384))
    assert out.size == (256, 384) and Upscaler.calls == [((32, 48), (256, 384))]
    assert "by the learned upscaler" in image_notes(out)[-1]


def test_grading_translator_is_applied_to_the_full_size_picture(gt):
    """A grade-only translator through the service: its coefficients, found at 32x48, grade the 128x192 picture's
    own pixels (the 1-pixel checkerboard stays), the note says so, and strength blends with the picture."""
    import copy

    from poster_studio.images import to_tensor

    a = np.asarray(fit_image(_poster(False, 5), (128, 192)), np.float32)
    a = a + 40 * ((np.indices(a.shape[:2]).sum(0) % 2)[..., None] - 0.5)
    pic = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    g = copy.copy(gt)
    g.translator = _grader()
    out = g.transfer(pic, "horror", engine="translate", size=(128, 192))
    assert image_notes(out)[-1] == ("The translate engine works at 32x48: its colour grade was spread over your "
                                    "picture and applied to it at 128x192.")
    full, x = to_tensor(pic)[None], to_tensor(pic.resize((32, 48), Image.Resampling.LANCZOS))[None]
    with torch.no_grad():
        want = (g.translator(x * 2 - 1, torch.tensor([1]), full=full * 2 - 1) + 1) / 2
    got = np.asarray(out, np.float32)
    assert np.abs(got - want[0].permute(1, 2, 0).numpy() * 255).max() <= 1.0
    checker = lambda im: np.abs(np.diff(im.mean(2), axis=1)).mean()  # noqa: E731
    assert checker(got) > 0.5 * checker(np.asarray(pic, np.float32))
    assert got.mean() < np.asarray(pic, np.float32).mean() - 20  # Horror's grade darkens
    half = np.asarray(g.transfer(pic, "horror", engine="translate", size=(128, 192), strength=0.5), np.float32)
    assert np.abs(half - (got + np.asarray(pic, np.float32)) / 2).max() <= 2


def test_translate_engine_adds_its_enlarged_change_to_the_full_size_picture(gt):
    """Residual enlargement: the result minus the picture is the network's change at its native size, enlarged;
    so the picture's own fine detail (here a 1-pixel checkerboard, gone at 32x48) stays in the result."""
    import torch.nn.functional as F

    from poster_studio.images import to_tensor

    a = np.asarray(fit_image(_poster(False, 5), (128, 192)), np.float32)
    a = a + 40 * ((np.indices(a.shape[:2]).sum(0) % 2)[..., None] - 0.5)  # fine detail
    pic = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    out = gt.transfer(pic, "horror", engine="translate", size=(128, 192))
    x = to_tensor(pic.resize((32, 48), Image.Resampling.LANCZOS))[None]
    tr = gt.translator
    with torch.no_grad():
        y = (tr(x * 2 - 1, torch.tensor([tr.genres.index("Horror_Thriller")])) + 1) / 2
    want = (to_tensor(pic)[None] + F.interpolate(y - x, size=(192, 128), mode="bicubic", align_corners=False))
    want = want.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    got = np.asarray(out, np.float32)
    assert np.abs(got - want).mean() < 1.0
    checker = lambda im: np.abs(np.diff(im.mean(2), axis=1)).mean()  # noqa: E731
    detail = checker(np.asarray(pic, np.float32))
    assert checker(got) > 0.5 * detail  # (some of it clipped where the change saturates a channel)
    try:
        gt.TRANSLATE_ENLARGE = "upscale"  # the translation itself enlarged: the detail is gone
        assert checker(np.asarray(gt.transfer(pic, "horror", engine="translate", size=(128, 192)), np.float32)) \
            < 0.3 * detail
    finally:
        del gt.TRANSLATE_ENLARGE


def test_cli_transfer_with_the_translate_engine(ckpts, tmp_path, capsys):
    from poster_studio.cli import main

    src = tmp_path / "poster.jpg"
    _poster(False, 4).save(src)
    base = ["transfer", "--engine", "translate", "--content", str(src), "--checkpoint", str(ckpts / "transfer"),
            "--translator", str(ckpts / "translator")]
    assert main(base + ["--genre", "horror", "--size", "64x96", "--out", str(tmp_path / "out.png")]) == 0
    assert Image.open(tmp_path / "out.png").size == (64, 96)
    capsys.readouterr()
    assert main(base + ["--genre", "drama", "--out", str(tmp_path / "no.png")]) == 2
    assert capsys.readouterr().err == "error: The translate engine reaches Comedy and Horror_Thriller, not Drama.\n"
    assert not (tmp_path / "no.png").exists()


def test_evaluate_translate_side_by_side_with_the_fast_engine(gt, data, tmp_path):
    from poster_studio.transfer.evaluate import evaluate_translate

    class Judge:  # sees Horror_Thriller in blue pictures, Comedy in the others
        def __init__(self, flip=False):
            self.flip = flip

        def predict_proba(self, images):
            p = np.zeros((len(images), len(G.GENRES)), np.float32)
            for i, im in enumerate(images):
                a = np.asarray(im, np.float32)
                blue = (a[..., 2].mean() > a[..., 0].mean()) != self.flip
                p[i, G.GENRES.index("Horror_Thriller" if blue else "Comedy")] = 1.0
            return p

    res = evaluate_translate(n_inputs=4, size=(64, 96), transfer=gt, classifier=Judge(), probe=Judge(flip=True),
                             data_dir=data, kid_cache=tmp_path / "kid", save_dir=tmp_path / "saved")
    assert res["inputs"] == 4 and res["engines"] == ["translate", "fast"] and set(res["genres"]) == set(PAIR)
    comedy = res["genres"]["Comedy"]
    assert comedy["inputs"] == 2  # the two blue Horror posters
    assert comedy["input"]["hit_rate"] == 0.0 and comedy["input"]["hit_rate_probe"] == 1.0
    for eng in ("translate", "fast"):
        r = comedy[eng]
        assert set(r) == {"hit_rate", "hit_rate_probe", "mean_target_prob", "kid", "ssim", "vgg_distance",
                          "seconds_per_image"}
        assert 0 < r["ssim"] <= 1 and r["vgg_distance"] > 0
    assert set(res["average"]) == {"input", "translate", "fast"}
    assert len(list((tmp_path / "saved" / "translate" / "Comedy").glob("*.jpg"))) == 2
    no_bridge = evaluate_translate(n_inputs=2, size=(64, 96), transfer=gt, classifier=Judge(), probe=Judge(),
                                   data_dir=data, kid_cache=tmp_path / "kid", engines=("translate", "bridge"))
    assert no_bridge["engines"] == ["translate"]  # this server has no latent generator: the bridge is left out
    with pytest.raises(InvalidArgumentError, match="reaches Comedy and Horror_Thriller, not Drama"):
        evaluate_translate(["drama"], n_inputs=2, transfer=gt, classifier=Judge(), probe=Judge(), data_dir=data,
                           kid_cache=tmp_path / "kid")


# ------------------------------------------------------------------------------------------- the tab
def test_tab_note_and_view(gt, ckpts, tmp_path):
    from ui.transfer_tab import engine_choices, exemplars_view, translate_note

    assert translate_note(gt).endswith("it reaches: Comedy, Horror & Thriller.")
    assert [v for _, v in engine_choices(gt)] == ["fast", "quality", "translate"]
    missing = GenreTransfer(AdaINDecoder(width=4))  # no translator on this server: not offered, no note
    assert translate_note(missing) == "" and [v for _, v in engine_choices(missing)] == ["fast", "quality"]
    assert [v for _, v in engine_choices(None)] == ["fast", "quality"]  # service still loading
    md, thumbs = exemplars_view(gt, "horror", [], "translate")
    assert md.startswith("**Translated to Horror & Thriller**") and thumbs == []
    assert exemplars_view(gt, "western", [], "translate") == ("", [])


def test_tab_handler_translates_through_the_service(gt, tmp_path):
    import gradio as gr

    import app
    from ui import common as U

    services = U.Services()
    services.transfer.service = gt
    services.transfer._done.set()
    demo = app.build_demo(services)
    transfer = next(f.fn for f in demo.fns.values() if f.api_name == "transfer")
    _poster(False, 5, 60, 90).save(tmp_path / "poster.png")
    out, md, _ = list(transfer(str(tmp_path / "poster.png"), "Horror & Thriller", "translate", 1.0, False, "64x96",
                               10, [], "crop"))[-1]
    with Image.open(out) as im:
        assert im.size == (64, 96)
    assert md.startswith("**Translated to Horror & Thriller** by the translate engine")
    with pytest.raises(gr.Error, match="The translate engine reaches Comedy and Horror_Thriller, not Drama."):
        list(transfer(str(tmp_path / "poster.png"), "Drama", "translate", 1.0, False, "64x96", 10, [], "crop"))
