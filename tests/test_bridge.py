"""The bridge engine (issue 21): genre translation through the latent generator's flow, backwards under no genre and
forwards under the target (transfer/bridge.py), through GenreTransfer, the CLI's engine list and the tab.

A tiny random latent generator and an encoder without its ImageNet weights: no checkpoint, no poster data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from poster_studio import genres as G
from poster_studio.errors import CheckpointError, InvalidArgumentError
from poster_studio.generate.latent import LatentGenerator, LatentPrior, LiteEncoder
from poster_studio.transfer import AdaINDecoder, GenreTransfer
from poster_studio.transfer.bridge import LatentBridge

torch.set_num_threads(1)


def _generator(trained: bool = True) -> LatentGenerator:
    torch.manual_seed(0)
    net = LatentGenerator(latent_channels=8, decoder_widths=(32, 16, 16, 8, 8), decoder_blocks=(1, 1, 0, 0, 0),
                          prior_width=16, prior_blocks=(1, 1), sample_steps=4)
    if trained:  # untrained zero-init layers would make the prior's velocity zero everywhere
        for p in net.parameters():
            p.data.normal_(0, 0.05)
    return net


@pytest.fixture(scope="module")
def gt():
    torch.manual_seed(0)
    bridge = LatentBridge(_generator(), encoder=LiteEncoder(pretrained=False), steps=4)
    return GenreTransfer(AdaINDecoder(width=4), bridge=bridge)


def _picture(seed: int = 0, w: int = 60, h: int = 90) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_prior_inversion_returns_to_the_latent_it_started_from():
    """invert then sample under the same (null) condition and no guidance: back to the latent (ODE reversibility),
    closer with more steps, and far closer than the inversion moved it."""
    torch.manual_seed(1)
    prior = LatentPrior(8, 16, blocks=(1, 1))
    for p in prior.parameters():
        p.data.normal_(0, 0.1)
    x1 = torch.randn(2, 8, 15, 10, generator=torch.Generator().manual_seed(0))

    def error(steps: int) -> float:
        back = prior.sample(prior.invert(x1, steps), None, steps, guidance=1.0)
        return float((back - x1).norm())

    moved = float((prior.invert(x1, 32) - x1).norm())
    coarse, fine = error(4), error(32)
    assert fine < coarse and fine < 0.05 * moved, (coarse, fine, moved)


def test_an_untrained_prior_leaves_the_picture_as_it_is():
    """Zero velocity (the prior's last conv starts at zero): noise == latent, no change added, output == input."""
    bridge = LatentBridge(_generator(trained=False), encoder=LiteEncoder(pretrained=False), steps=3)
    x = torch.rand(1, 3, 96, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(bridge(x, "Horror_Thriller"), x)


def test_bridge_engine_size_strength_genres_and_determinism(gt):
    pic = _picture()
    out = gt.transfer(pic, "horror", engine="bridge", size=(64, 96))
    assert out.size == (64, 96)
    again = gt.transfer(pic, "horror", engine="bridge", size=(64, 96))
    assert out.tobytes() == again.tobytes()  # no randomness: the noise comes from the picture itself
    other = gt.transfer(pic, "Comedy", engine="bridge", size=(64, 96))
    assert other.tobytes() != out.tobytes()
    fitted = np.asarray(gt.transfer(pic, "horror", engine="bridge", size=(64, 96), strength=0.0), dtype=np.float32)
    assert not np.array_equal(fitted, np.asarray(out, dtype=np.float32))
    half = np.asarray(gt.transfer(pic, "horror", engine="bridge", size=(64, 96), strength=0.5), dtype=np.float32)
    assert np.abs(half - (fitted + np.asarray(out, dtype=np.float32)) / 2).max() <= 1.0  # a blend (rounding)


def test_bridge_engine_messages(gt):
    with pytest.raises(InvalidArgumentError, match="Choose the genre to translate to"):
        gt.transfer(_picture(), None, engine="bridge", size=(64, 96))
    with pytest.raises(InvalidArgumentError, match="takes a genre, not style images"):
        gt.transfer(_picture(), "Drama", engine="bridge", size=(64, 96), style_images=[_picture(1)])
    with pytest.raises(InvalidArgumentError, match="Unknown genre"):
        gt.transfer(_picture(), "western", engine="bridge", size=(64, 96))
    missing = GenreTransfer(AdaINDecoder(width=4))  # a server without the latent generator
    with pytest.raises(CheckpointError, match="bridge engine needs Generate's latent engine"):
        missing.transfer(_picture(), "Drama", engine="bridge", size=(64, 96))
    with pytest.raises(InvalidArgumentError, match="Engine"):
        gt.transfer(_picture(), "Drama", engine="bridges", size=(64, 96))


def test_bridge_is_offered_in_the_tab_and_the_cli_only_where_it_works(gt):
    from poster_studio.cli import build_parser
    from ui.transfer_tab import engine_choices, exemplars_view

    assert [v for _, v in engine_choices(gt)] == ["fast", "quality", "bridge"]
    assert [v for _, v in engine_choices(GenreTransfer(AdaINDecoder(width=4)))] == ["fast", "quality"]
    md, thumbs = exemplars_view(gt, "romance", [], "bridge")
    assert md.startswith("**Translated to Romance** by the bridge engine") and thumbs == []
    args = build_parser().parse_args(["transfer", "--content", "x.png", "--genre", "Drama", "--engine", "bridge",
                                      "--out", "y.png"])
    assert args.engine == "bridge"


def test_tab_handler_runs_the_bridge_engine(gt, tmp_path):
    import app
    from ui import common as U

    services = U.Services()
    services.transfer.service = gt
    services.transfer._done.set()
    demo = app.build_demo(services)
    transfer = next(f.fn for f in demo.fns.values() if f.api_name == "transfer")
    _picture(2).save(tmp_path / "photo.png")
    out, md, _ = list(transfer(str(tmp_path / "photo.png"), "Comedy", "bridge", 1.0, False, "64x96", 10, [], "crop"))[-1]
    with Image.open(out) as im:
        assert im.size == (64, 96)
    assert md.startswith("**Translated to Comedy** by the bridge engine")


def test_bridge_gain_scales_the_decoded_change():
    """The change G(z') - G(z) is added times `gain`: 0 leaves the picture, 2 adds twice what 1 adds (where
    nothing clips)."""
    net = _generator()
    x = torch.rand(1, 3, 96, 64, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    enc = LiteEncoder(pretrained=False)
    outs = {g: LatentBridge(net, encoder=enc, steps=3, gain=g)(x, "Comedy") for g in (0, 1, 2)}
    assert torch.equal(outs[0], x)
    one, two = outs[1] - x, outs[2] - x
    inside = (outs[2] > 0.001) & (outs[2] < 0.999)
    scale = float(one.abs().max())
    assert scale > 0 and torch.allclose(two[inside], 2 * one[inside], atol=1e-3 * scale + 1e-7)
