"""Principal masks (the MindsEye study's second view beside Grad-CAM): where in a picture the genres differ.

For the picture's top-N genres, each genre's logit is backpropagated to the input pixels; the gradient magnitude
(max over colour channels, blurred, scaled to unit norm) is that genre's rough mask. An SVD of the N masks (not
centred, so the first component is the evidence all genres share and the later ones contrast genres) gives the
principal masks. Each one is signed so its weight on the genres is mostly positive, scaled to [0, 1] (its 99th
percentile at 1), shown in Grad-CAM's colours over the picture, and the
picture masked by it (the rest set to the picture's mean colour) is classified again.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PrincipalMask:
    mask: torch.Tensor               # (H, W) in [0, 1]
    variance: float                  # share of the masks' energy this component carries
    loadings: dict[str, float]       # genre -> weight of its saliency mask on this component
    scores: dict[str, float]         # genre -> probability when the picture is masked by it


def saliency_masks(model, x: torch.Tensor, genre_idx: list[int], blur: int = 15) -> torch.Tensor:
    """(N, H, W) unit-norm gradient-magnitude masks, one per genre index, of the network input x (1, 3, H, W)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)[0]
        masks = []
        for i in genre_idx:
            (g,) = torch.autograd.grad(logits[i], x, retain_graph=True)
            masks.append(g.abs().amax(1, keepdim=True))
    m = torch.cat(masks)  # (N, 1, H, W)
    m = F.avg_pool2d(m, blur, stride=1, padding=blur // 2, count_include_pad=False)[:, 0]
    return m / (m.flatten(1).norm(dim=1)[:, None, None] + 1e-12)


def principal_components(masks: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(components (k, H, W) scaled to [0, 1], variance shares (k,), loadings (N, k)) of the masks (N, H, W),
    k = min(count, N); each component signed so that its loadings sum to a positive number."""
    n, h, w = masks.shape
    u, s, vh = torch.linalg.svd(masks.reshape(n, h * w).double(), full_matrices=False)
    k = min(count, n)
    u, s, vh = u[:, :k], s[:k], vh[:k]
    sign = torch.where((u * s).sum(0) < 0, -1.0, 1.0).double()
    u, vh = u * sign, vh * sign[:, None]
    comps = vh.reshape(k, h, w).clamp(min=0)
    top = torch.quantile(comps.flatten(1).float(), 0.99, dim=1).double()  # gradients are spiky: stretch to the 99th
    comps = (comps / (top[:, None, None] + 1e-12)).clamp(max=1.0)
    energy = (s ** 2) / (torch.linalg.svdvals(masks.reshape(n, h * w).double()) ** 2).sum()
    return comps.float(), energy.float(), (u * s).float()


def apply_mask(picture: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """picture (1, 3, H, W) in [0, 1] kept where mask (H, W) is 1 and its mean colour where 0."""
    m = F.interpolate(mask[None, None], size=picture.shape[-2:], mode="bilinear", align_corners=False)
    return picture * m + picture.mean((2, 3), keepdim=True) * (1 - m)
