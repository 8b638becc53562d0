"""The pretrained backbones really are pretrained (weights from the installed packages, no download):
EfficientNet-Lite0 recognises a cat and a coffee cup; VGG-19 features tell a cat from coffee far better than a
randomly initialised VGG-19, and are truncated at the deepest layer asked for."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import CONTENT_DIR, needs_content
from poster_studio.backbones import VGG_LAYERS, VGG19Features, efficientnet_lite0
from poster_studio.data import IMAGENET_MEAN, IMAGENET_STD
from poster_studio.images import load_image

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def _categories() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return ResNet50_Weights.IMAGENET1K_V1.meta["categories"]  # metadata only: nothing is downloaded


def _tensor(name: str, size=(224, 224), normalize=True) -> torch.Tensor:
    from torchvision.transforms import v2 as T

    ops = [T.ToImage(), T.Resize(size, antialias=True), T.ToDtype(torch.float32, scale=True)]
    if normalize:
        ops.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(ops)(load_image(CONTENT_DIR / name))[None]


@pytest.fixture(scope="module")
def effnet():
    return efficientnet_lite0(pretrained=True)


@needs_content
@pytest.mark.parametrize("photo, accepted", [
    ("chelsea.png", {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}),
    ("coffee.png", {"espresso", "cup", "coffee mug", "eggnog"}),
])
def test_efficientnet_lite0_classifies_known_photos(effnet, photo, accepted):
    with torch.no_grad():
        probs = effnet(_tensor(photo)).softmax(1)[0]
    cats = _categories()
    top5 = [cats[i] for i in probs.topk(5).indices.tolist()]
    assert top5[0] in accepted, top5
    assert probs.max() > 0.3, top5  # confident, as trained weights are


def test_efficientnet_random_init_differs(effnet):
    rand = efficientnet_lite0(pretrained=False)
    a, b = effnet.state_dict(), rand.state_dict()
    key = next(k for k in a if k.endswith("conv_stem.weight"))
    assert not torch.equal(a[key], b[key])
    assert efficientnet_lite0(pretrained=True, num_classes=7)(torch.zeros(1, 3, 96, 64)).shape == (1, 7)


def _pooled(vgg, x, layer="relu5_1") -> torch.Tensor:
    with torch.no_grad():
        f = vgg(x, [layer])[layer]
    return F.normalize(f.mean((2, 3)), dim=1)[0]


def _grey_crop(x: torch.Tensor) -> torch.Tensor:
    """The same photo in greyscale, cropped and rescaled: different pixels, same object."""
    g = x.mean(1, keepdim=True).expand(-1, 3, -1, -1)[..., 30:200, 20:190]
    return F.interpolate(g, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _cat_margin(vgg, photos: dict) -> float:
    """Distance of the grey-cropped cat to the nearest *other* photo over its distance to the cat (relu5_1)."""
    query = _pooled(vgg, _grey_crop(photos["chelsea.png"]))
    d = {n: float((query - _pooled(vgg, x)).norm()) for n, x in photos.items()}
    return min(v for n, v in d.items() if n != "chelsea.png") / d["chelsea.png"]


@needs_content
def test_vgg19_features_are_pretrained():
    names = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "hubble_deep_field.jpg"]
    photos = {n: _tensor(n, (224, 224), normalize=False) for n in names if (CONTENT_DIR / n).is_file()}
    vgg = VGG19Features(["relu5_1"])
    cat, coffee = photos["chelsea.png"], photos["coffee.png"]
    a, flip, b = _pooled(vgg, cat), _pooled(vgg, cat.flip(3)), _pooled(vgg, coffee)
    assert (a - flip).norm() < (a - b).norm()  # a flipped cat is still the cat, coffee is not
    torch.manual_seed(0)
    rand = VGG19Features(["relu5_1"])
    for m in rand.features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    # Semantic features recognise the grey, cropped cat as the cat; random features follow colour and layout.
    pretrained, random_ = _cat_margin(vgg, photos), _cat_margin(rand, photos)
    assert pretrained > 1.2 and pretrained > random_ + 0.3, (pretrained, random_)
    # Trained first-layer filters are smooth edge/colour detectors; random ones are noise.
    def smoothness(net):
        w = net.features[0].weight
        return float(torch.corrcoef(torch.stack([w[..., :-1].flatten(), w[..., 1:].flatten()]))[0, 1])
    assert smoothness(vgg) > 0.3 and abs(smoothness(rand)) < 0.2


def test_vgg19_named_layers_truncation_and_gram():
    vgg = VGG19Features(["relu1_1", "relu2_1", "relu3_1"])
    assert len(vgg.features) == VGG_LAYERS.index("relu3_1") + 1  # truncated at the deepest layer asked for
    x = torch.rand(1, 3, 64, 48)
    out = vgg(x)
    assert set(out) == {"relu1_1", "relu2_1", "relu3_1"}
    assert out["relu1_1"].shape == (1, 64, 64, 48) and out["relu3_1"].shape == (1, 256, 16, 12)
    assert all(float(v.min()) >= 0 for v in out.values())  # ReLU outputs
    f = out["relu2_1"].flatten(2)[0]
    gram = f @ f.T / f.shape[1]
    assert torch.allclose(gram, gram.T, atol=1e-3)
    assert float(torch.linalg.eigvalsh(gram.double()).min()) > -1e-3 * float(gram.diagonal().max())
    with pytest.raises(ValueError):
        vgg(x, ["relu4_1"])  # beyond the truncation
    with pytest.raises(ValueError):
        VGG19Features(["relu9_9"])
    avg = VGG19Features(["relu2_1"], pooling="avg")  # pooling is chosen per call; one set of weights serves both
    x = torch.rand(1, 3, 32, 32)
    a, m = avg(x)["relu2_1"], avg(x, pooling="max")["relu2_1"]
    assert a.shape == m.shape and not torch.allclose(a, m)
    assert torch.allclose(m, VGG19Features(["relu2_1"])(x)["relu2_1"])
