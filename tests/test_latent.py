"""Generate v3, the latent engine: projection, decoder, flow-matching prior, the shipped model's round trip and the
resumable training stages on a handful of posters."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import DATA_DIR, ROOT, needs_posters
from poster_studio import genres as G
from poster_studio import hub
from poster_studio.generate.latent import (FeatureProjection, LatentDecoder, LatentGenerator, LatentPrior,
                                           LiteEncoder)


def test_encoder_is_frozen_lite1_at_stride_16():
    enc = LiteEncoder()
    x = torch.rand(2, 3, 240, 160)
    h = enc(x)
    assert h.shape == (2, 112, 15, 10)
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.body.training  # BatchNorm statistics stay ImageNet's
    assert torch.equal(enc(x), h)
    # the packaged ImageNet weights, not timm's random init: the stem is the package file's first tensor
    from poster_studio.backbones import efficientnet_lite_weights_path

    packaged = torch.load(efficientnet_lite_weights_path(1), map_location="cpu", weights_only=True)
    assert torch.equal(enc.body[0].weight, next(iter(packaged.values())))
    assert not torch.equal(LiteEncoder(pretrained=False).body[0].weight, enc.body[0].weight)


def test_projection_is_pca_of_the_channels():
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(112, 4, generator=g)
    h = torch.einsum("kc,nchw->nkhw", mix, torch.randn(20, 4, 3, 3, generator=g)) + 5.0  # rank-4 channel data
    proj = FeatureProjection(4).fit(h)
    assert float(proj.explained) == pytest.approx(1.0, abs=1e-4)
    z = proj.encode(h)
    assert z.shape == (20, 4, 3, 3)
    assert z.pow(2).mean().item() == pytest.approx(1.0, rel=0.05)  # one global scale: unit variance on average
    assert torch.allclose(proj.decode(z), h, atol=1e-3)
    two = FeatureProjection(2).fit(h)
    assert float(two.explained) < 0.99
    assert not torch.allclose(two.decode(two.encode(h)), h, atol=1e-2)


def test_decoder_shape_and_upsampling_without_transposed_convolutions():
    dec = LatentDecoder(8, widths=(32, 16, 16, 8, 8), blocks=(1, 1, 0, 0, 0))
    assert dec(torch.randn(3, 8, 15, 10)).shape == (3, 3, 240, 160)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in dec.modules())


def test_prior_learns_a_genre_conditional_toy_distribution():
    """Two 'genres' whose latents are two constants: after a short training the conditional samples land on their
    genre's constant, and guidance 1 is plain conditional sampling."""
    torch.manual_seed(0)
    prior = LatentPrior(latent_channels=2, width=16, num_genres=2, blocks=(1, 1), emb_dim=32)
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    c = torch.eye(2).repeat(16, 1)
    x1 = torch.where(c[:, :1, None, None].bool(), torch.full((32, 2, 3, 2), 1.5), torch.full((32, 2, 3, 2), -1.5))
    for _ in range(300):
        opt.zero_grad()
        prior.loss(x1, c, generator=g).backward()
        opt.step()
    prior.eval()
    noise = torch.randn(8, 2, 3, 2, generator=torch.Generator().manual_seed(1))
    cond = torch.eye(2).repeat(4, 1)
    out = prior.sample(noise, cond, steps=12, guidance=1.5)
    first = cond[:, 0].bool()
    assert out[first].mean().item() == pytest.approx(1.5, abs=0.4)
    assert out[~first].mean().item() == pytest.approx(-1.5, abs=0.4)
    again = prior.sample(noise, cond, steps=12, guidance=1.5)
    assert torch.equal(out, again)  # same noise -> same latents
    seen = []
    prior.sample(noise, cond, steps=5, guidance=1.0, callback=lambda i, n, x: seen.append((i, n)))
    assert seen == [(i, 5) for i in range(1, 6)]


def small_generator(preferred: bool = True) -> LatentGenerator:
    torch.manual_seed(0)
    return LatentGenerator(latent_channels=8, decoder_widths=(32, 16, 16, 8, 8), decoder_blocks=(1, 1, 0, 0, 0),
                           prior_width=16, prior_blocks=(1, 1), genre_prior={"Comedy": 0.5, "Drama": 0.5},
                           sample_steps=4, preferred=preferred)


def test_latent_generator_round_trip_through_a_checkpoint_folder(tmp_path):
    model = small_generator()
    for p in model.parameters():  # untrained zero-init layers would make every output the same
        p.data.normal_(0, 0.05)
    model.projection.scale.fill_(2.0)
    z = torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(0))
    c = G.encode(["Comedy"]).expand(2, -1).clone()
    out = model(z, c)
    assert out.shape == (2, 3, 240, 160) and out.min() >= -1 and out.max() <= 1
    hub.save_checkpoint(model, tmp_path / "generator-latent")
    loaded = hub.load_model(LatentGenerator, "generator-latent", directory=tmp_path / "generator-latent")
    assert loaded.genre_prior == {"Comedy": 0.5, "Drama": 0.5}
    assert float(loaded.projection.scale) == 2.0
    assert torch.equal(loaded(z, c), out)
    assert not torch.equal(loaded(z, G.encode(["Drama"]).expand(2, -1).clone()), out)


@needs_posters
def test_training_stages_resume_and_export_a_loadable_engine(tmp_path):
    """cache -> decoder -> prior -> export on 24 posters, each stage rerun to check it resumes, then the service
    generates from the exported folder."""
    work, out = tmp_path / "work", tmp_path / "generator-latent"
    base = [sys.executable, str(ROOT / "train" / "train_latent.py"), "--data", str(DATA_DIR), "--work", str(work),
            "--out", str(out), "--max-images", "24", "--latent-channels", "8", "--threads", "1",
            "--batch", "2", "--sample-every", "3", "--save-every", "2"]

    def run(*extra: str) -> str:
        res = subprocess.run(base + list(extra), capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    assert "keeps" in run("--stage", "cache")
    run("--stage", "decoder", "--max-steps", "2")
    assert hub_state(work / "decoder" / "state.safetensors") == 2
    assert "resumed decoder at step 2" in run("--stage", "decoder", "--max-steps", "4")
    assert hub_state(work / "decoder" / "state.safetensors") == 4
    assert (work / "decoder" / "recon_latest.png").is_file()
    run("--stage", "prior", "--max-steps", "3")
    assert (work / "prior" / "samples_latest.png").is_file()
    # the adversarial fine-tune starts from the decoder's EMA, draws its prior bank once, resumes with its critic
    adv = ("--stage", "decoder-adv", "--bank", "4", "--batch", "2", "--prior-share", "0.5")
    assert "decoder-adv starts from" in run(*adv, "--max-steps", "2")
    assert (work / "prior_bank_4.safetensors").is_file()
    assert "resumed decoder-adv at step 2" in run(*adv, "--max-steps", "3")
    from poster_studio.training import load_state

    st = load_state(work / "decoder-adv" / "state.safetensors")
    assert int(st["step"]) == 3 and "critic" in st["extra"] and "d_opt" in st["extra"]
    run("--stage", "export", "--decoder-run", "decoder-adv")
    from safetensors.torch import load_file

    exported, adv_ema = load_file(str(out / "model.safetensors")), load_file(str(work / "decoder-adv" / "ema.safetensors"))
    assert all(torch.equal(exported["decoder." + k], v) for k, v in adv_ema.items())
    card = json.loads((out / "config.json").read_text())
    assert card["arch"] == "latent" and card["latent_channels"] == 8
    from poster_studio.generate import PosterGenerator

    gen = PosterGenerator.load(directory=out)
    assert gen.arch == "latent" and gen.native_size == (160, 240)
    imgs = gen.generate(["Horror_Thriller"], n=2, seed=3)
    assert [im.size for im in imgs] == [(160, 240)] * 2
    assert [im.tobytes() for im in gen.generate(["Horror_Thriller"], n=2, seed=3)] == [im.tobytes() for im in imgs]
    # a machine whose runs/ is gone: unpack puts the shipped projection, decoder and prior back into a new work folder
    work2 = tmp_path / "work2"
    run("--stage", "unpack", "--work", str(work2), "--decoder-run", "decoder-adv")
    assert torch.equal(load_file(str(work2 / "projection_8.safetensors"))["mean"], exported["projection.mean"])
    assert all(torch.equal(load_file(str(work2 / "decoder-adv" / "ema.safetensors"))[k], v) for k, v in adv_ema.items())
    prior_ema = load_file(str(work2 / "prior" / "ema.safetensors"))
    assert prior_ema.keys() and all(torch.equal(exported["prior." + k], v) for k, v in prior_ema.items())
    # a prior of another size trains in its own run folder and exports with its sizes in the config
    wide = ("--prior-run", "prior-wide", "--prior-width", "16", "--prior-blocks", "1", "1")
    assert "prior width 16 blocks [1, 1]" in run("--stage", "prior", *wide, "--max-steps", "2")
    out2 = tmp_path / "generator-wide"
    run("--stage", "export", "--decoder-run", "decoder-adv", *wide, "--out", str(out2))
    card2 = json.loads((out2 / "config.json").read_text())
    assert card2["prior_width"] == 16 and card2["prior_blocks"] == [1, 1]
    wide_gen = PosterGenerator.load(directory=out2)
    assert [im.size for im in wide_gen.generate(["Comedy"], n=1, seed=0)] == [(160, 240)]


def hub_state(path) -> int:
    from poster_studio.training import load_state

    return int(load_state(path)["step"])


def two_engine_service(novelty=None, preferred: bool = True):
    from poster_studio.generate import PosterGenerator
    from poster_studio.generate.model import PosterGAN

    latent = small_generator(preferred)
    for p in latent.parameters():
        p.data.normal_(0, 0.05)
    torch.manual_seed(0)
    gan = PosterGAN(z_dim=16, embed_dim=8, channels=(32, 16, 8, 8, 8, 8))
    return PosterGenerator(engines={"instant": gan, "latent": latent}, device=torch.device("cpu"), novelty=novelty)


def test_service_serves_both_engines_with_the_latent_one_as_default():
    from poster_studio.errors import InvalidArgumentError

    gen = two_engine_service()
    assert gen.engines == ("latent", "instant") and gen.default_engine == "latent"
    assert gen.check_inputs(engine=None)["engine"] == "latent"
    latent = gen.generate(["Comedy"], n=2, seed=1)
    assert [im.size for im in latent] == [(160, 240)] * 2
    assert [im.size for im in gen.generate(["Comedy"], n=2, seed=1, engine="instant")] == [(128, 192)] * 2
    assert [im.tobytes() for im in gen.generate(["Comedy"], n=2, seed=1, engine="latent")] == \
        [im.tobytes() for im in latent]
    with pytest.raises(InvalidArgumentError, match="latent, instant"):
        gen.check_inputs(engine="diffusion")
    only = type(gen)(engines={"instant": gen.nets["instant"]}, device=torch.device("cpu"))
    with pytest.raises(InvalidArgumentError, match=r"latent engine is not installed.*available: instant"):
        only.generate(["Comedy"], n=1, engine="latent")
    assert only.generate(["Comedy"], n=1)[0].size == (128, 192)  # the other engine keeps working
    assert [im.size for im in gen.morph(["Comedy"], ["Drama"], steps=3)] == [(128, 192)] * 3  # morph: instant
    assert gen.morph_engine == "instant" and only.morph_engine == "instant"
    assert gen.native_sizes() == {"latent": (160, 240), "instant": (128, 192)}
    # a latent checkpoint not marked preferred is opt-in: the instant GAN stays the default
    opt_in = two_engine_service(preferred=False)
    assert opt_in.default_engine == "instant" and opt_in.engines == ("latent", "instant")
    assert opt_in.generate(["Comedy"], n=1)[0].size == (128, 192)
    assert opt_in.generate(["Comedy"], n=1, engine="latent")[0].size == (160, 240)


class FlagFirstOnce:
    """A stand-in novelty check: the first poster it ever sees is 'a copy', nothing else."""

    def __init__(self):
        self.calls = 0

    def too_close(self, images):
        self.calls += 1
        import numpy as np

        return np.array([self.calls == 1 and i == 0 for i in range(len(images))])


def test_latent_posters_too_close_to_a_training_poster_are_redrawn_deterministically():
    plain = two_engine_service().generate(["Drama"], n=3, seed=5)
    checked = two_engine_service(FlagFirstOnce())
    out = checked.generate(["Drama"], n=3, seed=5)
    assert checked.novelty_redraws == 1
    assert out[0].tobytes() != plain[0].tobytes()  # redrawn
    assert [im.tobytes() for im in out[1:]] == [im.tobytes() for im in plain[1:]]  # the others kept
    again = two_engine_service(FlagFirstOnce()).generate(["Drama"], n=3, seed=5)
    assert [im.tobytes() for im in again] == [im.tobytes() for im in out]
    # the instant engine is never checked
    assert two_engine_service(FlagFirstOnce()).generate(["Drama"], n=1, engine="instant")


# ------------------------------------------------------------------------------------------ classifier guidance
class TinyClassifier:
    """A stand-in for classify.Classifier: a fixed random conv net at a small input size whose genre 0 logit is
    the image's mean red minus its mean blue (so guidance toward genre 0 must make posters redder)."""

    class Net(torch.nn.Module):
        image_size = (48, 32)

        def forward(self, x):
            m = x.mean((2, 3))
            logits = torch.zeros(len(x), G.NUM_GENRES)
            logits[:, 0] = 20 * (m[:, 0] - m[:, 2])
            return logits

        @property
        def primary_network(self):  # the network gradients run through (an ensemble's primary member)
            return self

    def __init__(self):
        self.model = self.Net()


def test_classifier_guidance_moves_latents_toward_the_genre_and_is_seeded():
    from poster_studio.generate.guidance import ClassifierGuidance

    net = small_generator()
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    guide = ClassifierGuidance(TinyClassifier(), lr=0.5, anchor=0.01)
    z0 = torch.randn(3, 8, 15, 10, generator=torch.Generator().manual_seed(0))
    c = torch.zeros(3, G.NUM_GENRES)
    c[:, 0] = 1
    assert guide(net.decode, z0, c, 0, torch.Generator()) is z0  # no steps: the prior's sample itself
    done = []
    z = guide(net.decode, z0, c, 6, torch.Generator().manual_seed(1), callback=lambda i, n, x: done.append((i, n)))
    assert done == [(i, 6) for i in range(1, 7)]
    with torch.no_grad():
        before, after = guide.scores(net.decode(z0).clamp(0, 1), c), guide.scores(net.decode(z).clamp(0, 1), c)
    assert (after > before).all() and float((after - before).mean()) > 0.1, (before, after)
    assert torch.equal(guide(net.decode, z0, c, 6, torch.Generator().manual_seed(1)), z)  # same views, same result
    stop = __import__("threading").Event()
    calls = []

    def cancel_after_two(i, n, x):
        calls.append(i)
        if i == 2:
            stop.set()
    guide(net.decode, z0, c, 6, torch.Generator().manual_seed(1), callback=cancel_after_two, cancel=stop)
    assert calls == [1, 2]


class EmbeddingClassifier(TinyClassifier):
    """TinyClassifier with an embedding (the mean colour, L2-normalised by the guidance) and an embeddings index of
    'training posters' (`bank`), as classify.Classifier has."""

    class Net(TinyClassifier.Net):
        def feature_maps(self, x):
            return (x,)

        def head_from_maps(self, maps):
            return self.forward(maps[0]), maps[0].mean((2, 3))

    def __init__(self, bank):
        self.model = self.Net()
        self.index = __import__("types").SimpleNamespace(embeddings=bank)


def test_guidance_repels_posters_from_their_nearest_training_poster():
    """Each poster starts next to a 'training poster' of the index, closer than the novelty threshold: with `repel`
    the hinge pushes it out past the threshold, without it nothing moves it (no genre asked: the score pulls
    nowhere)."""
    import torch.nn.functional as F
    import torchvision.transforms.v2.functional as TF

    from poster_studio.data import IMAGENET_MEAN, IMAGENET_STD
    from poster_studio.generate.guidance import REPEL_MARGIN, ClassifierGuidance

    def decode(z):  # a decoder whose colours follow the latent closely
        return torch.sigmoid(F.interpolate(z[:, :3], scale_factor=4.0))

    z0 = torch.randn(3, 8, 15, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x0 = F.interpolate(decode(z0), size=(48, 32), mode="bilinear", antialias=True)
        emb = F.normalize(TF.normalize(x0, IMAGENET_MEAN, IMAGENET_STD).mean((2, 3)), dim=1)
        bank = F.normalize(emb + 0.005 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(1)), dim=1)
    c = torch.zeros(3, G.NUM_GENRES)
    threshold = 0.02
    plain = ClassifierGuidance(EmbeddingClassifier(bank), lr=0.3, anchor=0.01)
    repel = ClassifierGuidance(EmbeddingClassifier(bank), lr=0.3, anchor=0.01, repel=threshold)
    assert plain.repel is None and repel.repel == pytest.approx(threshold * REPEL_MARGIN)
    with torch.no_grad():
        start = repel.nearest_distance(decode(z0).clamp(0, 1))
        assert float(start.max()) < threshold
        kept = repel.nearest_distance(decode(plain(decode, z0, c, 8, torch.Generator())).clamp(0, 1))
        moved = repel.nearest_distance(decode(repel(decode, z0, c, 8, torch.Generator())).clamp(0, 1))
    assert torch.allclose(kept, start, atol=1e-4), (kept, start)
    assert bool((moved > threshold).all()), moved
    assert ClassifierGuidance(TinyClassifier(), repel=threshold).repel is None  # no index: nothing to repel from


def test_service_guidance_steps_progress_and_refusals():
    from poster_studio.errors import InvalidArgumentError
    from poster_studio.generate.guidance import ClassifierGuidance
    from poster_studio.progress import Steps

    gen = two_engine_service()
    with pytest.raises(InvalidArgumentError, match="needs the classifier"):
        gen.generate(["Comedy"], n=1, guidance=3)
    gen.guidance = ClassifierGuidance(TinyClassifier(), lr=0.2)
    with pytest.raises(InvalidArgumentError, match="latent engine only"):
        gen.generate(["Comedy"], n=1, guidance=3, engine="instant")
    with pytest.raises(InvalidArgumentError, match="Guidance steps"):
        gen.check_inputs(guidance=gen.MAX_GUIDANCE + 1)
    seen: list = []
    plain = gen.generate(["Comedy"], n=2, seed=4, progress=seen.append)
    assert [(s.done, s.total) for s in seen] == [(i, 4) for i in range(1, 5)]  # the prior's 4 steps
    seen.clear()
    guided = gen.generate(["Comedy"], n=2, seed=4, guidance=3, progress=seen.append)
    assert all(isinstance(s, Steps) for s in seen) and [(s.done, s.total) for s in seen][-3:] == [(5, 7), (6, 7), (7, 7)]
    assert [im.tobytes() for im in guided] != [im.tobytes() for im in plain]
    assert [im.tobytes() for im in gen.generate(["Comedy"], n=2, seed=4, guidance=3)] == [im.tobytes() for im in guided]
