"""The upscaler's network: a compact super-resolution CNN in the style of Real-ESRGAN's SRVGGNetCompact / ESPCN.

`PosterUpscaler(scale, channels, layers)`: a 3x3 conv + PReLU from RGB to `channels`, `layers` more 3x3 conv +
PReLU at low resolution, a last 3x3 conv to 3 * scale^2 channels and a PixelShuffle. Its output is a residual
added to the bicubic upsampling of the input; the last conv starts at zero, so an untrained network *is* bicubic
upsampling and training only has to learn the difference. All work happens at the input resolution (cheap on a
CPU: about 9 * channels^2 * layers multiply-adds per input pixel).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import hub


class PosterUpscaler(nn.Module, hub.HubMixin):
    """Compact super-resolution CNN (SRVGGNetCompact-like): 3x3 conv + PReLU layers at low resolution, then a
    PixelShuffle by `scale`, predicting a residual over bicubic upsampling. Input and output: RGB in [0, 1]
    (the output is not clamped)."""

    def __init__(self, scale: int = 2, channels: int = 32, layers: int = 8):
        super().__init__()
        if int(scale) < 2 or int(channels) < 1 or int(layers) < 0:
            raise ValueError(f"PosterUpscaler needs scale >= 2, channels >= 1, layers >= 0; got {scale}, {channels}, "
                             f"{layers}")
        self.scale, self.channels, self.layers = int(scale), int(channels), int(layers)
        body: list[nn.Module] = [nn.Conv2d(3, self.channels, 3, padding=1), nn.PReLU(self.channels)]
        for _ in range(self.layers):
            body += [nn.Conv2d(self.channels, self.channels, 3, padding=1), nn.PReLU(self.channels)]
        last = nn.Conv2d(self.channels, 3 * self.scale ** 2, 3, padding=1)
        nn.init.zeros_(last.weight)  # residual starts at zero: untrained = bicubic
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*body, last, nn.PixelShuffle(self.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, scale * H, scale * W)."""
        return bicubic_upsample(x, self.scale) + self.body(x - 0.5)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The base the network adds its residual to (torch bicubic, a = -0.75)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
