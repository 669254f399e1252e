"""Train-time augmentation of image batches, run with torch ops on the batch's device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ImageAugment"]


@dataclass(frozen=True)
class ImageAugment:
    """Random train-time augmentation of a batch of images, with torch ops on its device.

    Each image gets its own draw of: horizontal/vertical flip, a small affine
    transform (rotation, scale, translation), gamma, contrast and brightness changes
    (relative to the image's own intensity range) and multiplicative speckle noise.

    Parameters
    ----------
    hflip, vflip : float
        Flip probabilities (ultrasound depth runs top to bottom: ``vflip=0``).
    rotate : float
        Maximum rotation in degrees.
    scale : float
        Maximum relative zoom in or out.
    translate : float
        Maximum shift as a fraction of the image size.
    gamma : float
        Gamma drawn log-uniformly in ``[1/(1+gamma), 1+gamma]``.
    contrast, brightness : float
        Maximum relative contrast change; maximum shift as a fraction of the range.
    speckle : float
        Standard deviation of the multiplicative noise ``x * (1 + speckle * N(0, 1))``.

    Examples
    --------
    >>> import torch
    >>> from thyronet.cnn import ImageAugment
    >>> _ = torch.manual_seed(0)
    >>> ImageAugment()(torch.rand(4, 2, 16, 16)).shape
    torch.Size([4, 2, 16, 16])
    """

    hflip: float = 0.5
    vflip: float = 0.0
    rotate: float = 10.0
    scale: float = 0.1
    translate: float = 0.05
    gamma: float = 0.2
    contrast: float = 0.1
    brightness: float = 0.1
    speckle: float = 0.05

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        dev = x.device
        x = x.float()

        def uniform(bound: float) -> torch.Tensor:
            return torch.empty(n, device=dev).uniform_(-bound, bound)

        def per_image(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, 1, 1, 1)

        for p, dim in ((self.hflip, -1), (self.vflip, -2)):
            if p > 0:
                flip = per_image(torch.rand(n, device=dev) < p)
                x = torch.where(flip, x.flip(dim), x)
        if self.rotate > 0 or self.scale > 0 or self.translate > 0:
            angle = uniform(self.rotate) * (math.pi / 180.0)
            zoom = 1.0 + uniform(self.scale)
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            tx, ty = 2.0 * uniform(self.translate), 2.0 * uniform(self.translate)
            theta = torch.stack(
                [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
            )
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.gamma > 0 or self.contrast > 0 or self.brightness > 0 or self.speckle > 0:
            lo = x.amin(dim=(1, 2, 3), keepdim=True)
            span = (x.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-6)
            z = (x - lo) / span
            if self.gamma > 0:
                g = torch.exp(uniform(math.log1p(self.gamma)))
                z = z.clamp(0.0, 1.0) ** per_image(g)
            if self.contrast > 0:
                mean = z.mean(dim=(1, 2, 3), keepdim=True)
                z = (z - mean) * per_image(1.0 + uniform(self.contrast)) + mean
            if self.brightness > 0:
                z = z + per_image(uniform(self.brightness))
            if self.speckle > 0:
                z = z * (1.0 + self.speckle * torch.randn_like(z))
            x = z * span + lo
        return x
