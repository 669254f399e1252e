"""The torch side of a backbone: :class:`BackboneNet`, the module a SkorchCNN trains.

:class:`thyronet.backbones.Backbone` (torch-free) describes an architecture;
:meth:`Backbone.build_net <thyronet.backbones.Backbone.build_net>` wraps the built
timm model in a :class:`BackboneNet` (input normalisation, feature path, Grad-CAM
target, head parameters). This module depends on torch only, so the torch-free
registry can hand out the class without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BackboneNet"]


class BackboneNet(nn.Module):
    """A built backbone with its input normalisation: the ``module_`` of a SkorchCNN.

    ``forward`` normalises raw images with the backbone's per-channel mean/std and
    returns the logits; :meth:`forward_features` returns the penultimate features.
    The weights of the wrapped timm model are ``self.model`` (its state-dict keys,
    without the ``model.`` prefix, are what :meth:`SkorchCNN.save_weights` writes).

    Parameters
    ----------
    model : torch.nn.Module
        A timm-style model.
    mean, std : sequence of float
        Per-channel normalisation.
    target_layer : str
        Grad-CAM target layer name, relative to ``model``.

    Examples
    --------
    >>> import torch
    >>> from thyronet.backbones import get_backbone
    >>> net = get_backbone("test_resnet").build_net(in_chans=2)
    >>> net.forward_features(torch.zeros(3, 2, 32, 32)).shape
    torch.Size([3, 96])
    """

    def __init__(
        self, model: nn.Module, mean: Sequence[float], std: Sequence[float], target_layer: str = ""
    ) -> None:
        super().__init__()
        self.model = model
        shape = (1, len(mean), 1, 1)
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(shape), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(shape), persistent=False
        )
        self.target_layer = target_layer

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the per-channel normalisation."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (pooled, pre-logits) features, ``(n, num_features)``."""
        features = self.model.forward_features(self.normalize(x))
        return self.model.forward_head(features, pre_logits=True)

    def gradcam_target(self) -> nn.Module:
        """The sub-module Grad-CAM should target."""
        return self.model.get_submodule(self.target_layer)

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the classifier head (trained alone while the body is frozen)."""
        head = self.model.get_classifier()
        return list(head.parameters()) if isinstance(head, nn.Module) else []
