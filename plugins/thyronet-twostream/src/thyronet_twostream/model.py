"""The two-stream late-fusion network.

Early fusion (the paper's dual-channel image) stacks the views as the channels
of one image and lets the first convolution mix them. Late fusion keeps the
views apart until the end: every view goes through the *same* CNN trunk (shared
weights), each view's feature maps are pooled, the pooled features are
concatenated and one head classifies them::

    x: (n, V, H, W) --view v--> trunk (1 channel in) --> (n, k, h, w)   for each v
                    --> ViewConcat --> (n, V*k, h, w)      [Grad-CAM target "views"]
                    --> global average pool --> (n, V*k)   [penultimate features]
                    --> dropout --> Linear --> (n, num_classes)

The network follows timm's interface (``forward_features``, ``forward_head(x,
pre_logits=True)``, ``get_classifier()``, ``num_features``), so thyronet's
:class:`~thyronet.SkorchCNN`, :class:`~thyronet.DeepFeatureExtractor` and
Grad-CAM use it like any registered backbone. The number of views is the input's
channel count (``in_chans``): two for ``DualChannelFuser(strategy="stack")``,
more with multi-view fusion. The penultimate features are ``V * k`` wide.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["TwoStreamNet", "ViewConcat", "build_twostream", "load_weights_file"]


class ViewConcat(nn.Module):
    """Put each patient's per-view feature maps side by side along the channels.

    ``(n * V, k, h, w) -> (n, V * k, h, w)``: channels ``v*k .. (v+1)*k - 1`` are
    view ``v``. Its output is the Grad-CAM target of the two-stream network: one
    activation map per patient, combining what every view contributes.

    Parameters
    ----------
    n_views : int
        Views per patient.

    Examples
    --------
    >>> import torch
    >>> from thyronet_twostream.model import ViewConcat
    >>> ViewConcat(2)(torch.zeros(6, 4, 3, 3)).shape
    torch.Size([3, 8, 3, 3])
    """

    def __init__(self, n_views: int) -> None:
        super().__init__()
        self.n_views = int(n_views)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nv, k, h, w = x.shape
        return x.reshape(nv // self.n_views, self.n_views * k, h, w)

    def extra_repr(self) -> str:
        return f"n_views={self.n_views}"


class TwoStreamNet(nn.Module):
    """A shared-weight trunk per view, concatenated pooled features and a linear head.

    Parameters
    ----------
    trunk : torch.nn.Module
        A timm model built with ``in_chans=1``, ``num_classes=0`` and
        ``global_pool=""`` (``forward_features`` returns feature maps).
    n_views : int
        Views per patient (the channel count of the input images).
    num_classes : int, default=1
        Outputs of the head (0: no head, ``forward`` returns the features).
    drop_rate : float, default=0.0
        Dropout before the head.

    Attributes
    ----------
    num_features : int
        ``n_views * trunk.num_features``: the penultimate feature size.

    Examples
    --------
    >>> import torch
    >>> from thyronet_twostream.model import build_twostream
    >>> net = build_twostream(in_chans=2, num_classes=1, trunk="test_resnet").eval()
    >>> net.num_features
    192
    >>> net(torch.zeros(3, 2, 32, 32)).shape
    torch.Size([3, 1])
    >>> net.forward_head(net.forward_features(torch.zeros(3, 2, 32, 32)), pre_logits=True).shape
    torch.Size([3, 192])
    """

    def __init__(self, trunk: nn.Module, n_views: int, num_classes: int = 1,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        if n_views < 1:
            raise ValueError(f"n_views must be >= 1, got {n_views}")
        self.trunk = trunk
        self.n_views = int(n_views)
        self.views = ViewConcat(self.n_views)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = self.n_views * int(trunk.num_features)
        self.head_drop = nn.Dropout(drop_rate)
        self.num_classes = int(num_classes)
        self.fc: nn.Module = (nn.Linear(self.num_features, num_classes) if num_classes > 0
                              else nn.Identity())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-view trunk feature maps, concatenated along channels: ``(n, V*k, h, w)``."""
        if x.ndim != 4 or x.shape[1] != self.n_views:
            raise ValueError(f"TwoStreamNet was built for {self.n_views} view(s) (input "
                             f"channels); got input of shape {tuple(x.shape)}")
        n, v, h, w = x.shape
        maps = self.trunk.forward_features(x.reshape(n * v, 1, h, w))
        return self.views(maps)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool and classify; ``pre_logits=True`` returns the concatenated features."""
        x = self.global_pool(x).flatten(1)
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The head (trained alone while the trunk is frozen)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a new one of ``num_classes`` outputs."""
        self.num_classes = int(num_classes)
        self.fc = (nn.Linear(self.num_features, num_classes) if num_classes > 0
                   else nn.Identity())


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(payload, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(payload.get(key), dict):
                return payload[key]
    if not isinstance(payload, dict):
        raise ValueError(f"weights file {str(path)!r} holds a {type(payload).__name__}, "
                         "not a state dict")
    return payload


def _create_trunk(trunk: str, pretrained: bool | str, **kwargs: Any) -> nn.Module:
    import timm

    if isinstance(pretrained, str):
        return timm.create_model(trunk, pretrained=True, in_chans=1, num_classes=0,
                                 global_pool="", pretrained_cfg_overlay={"file": pretrained},
                                 **kwargs)
    return timm.create_model(trunk, pretrained=bool(pretrained), in_chans=1, num_classes=0,
                             global_pool="", **kwargs)


def load_weights_file(net: TwoStreamNet, path: str | os.PathLike) -> TwoStreamNet:
    """Load a two-stream weights file (keys ``trunk.*``, ``fc.*``) into ``net``.

    The trunk must match exactly (it is shared by the views, so a file saved with
    any number of views fits). The head is loaded when its shape matches (same
    number of views and classes); otherwise it stays freshly initialised.

    Parameters
    ----------
    net : TwoStreamNet
    path : str or path-like
        A ``.safetensors`` file or a ``torch.save`` state dict (as written by
        :meth:`thyronet.SkorchCNN.save_weights`).

    Returns
    -------
    TwoStreamNet
        ``net``, loaded.

    Raises
    ------
    ValueError
        Trunk keys are missing, unexpected or of another shape (they are named).
    """
    path = Path(path)
    state = _read_state(path)
    own = net.state_dict()
    trunk_keys = {k for k in own if k.startswith("trunk.")}
    given_trunk = {k for k in state if k.startswith("trunk.")}
    optional = {k for k in trunk_keys if k.endswith("num_batches_tracked")}
    missing = sorted(trunk_keys - given_trunk - optional)
    unexpected = sorted(k for k in state if k not in own)
    wrong = sorted(k for k in given_trunk & trunk_keys if tuple(state[k].shape) != tuple(
        own[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:6])}" + (f" ... ({len(keys)} in all)"
                                                      if len(keys) > 6 else "")
                 for label, keys in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shape", wrong)) if keys]
        raise ValueError(f"weights file {str(path)!r} does not fit this two-stream network; "
                         + "; ".join(parts))
    head = {k: v for k, v in state.items() if k.startswith("fc.")}
    load = {k: v for k, v in state.items() if k.startswith("trunk.")}
    if head and all(k in own and tuple(v.shape) == tuple(own[k].shape) for k, v in head.items()):
        load.update(head)
    net.load_state_dict(load, strict=False)
    return net


def build_twostream(*, in_chans: int, num_classes: int = 1,
                    pretrained: bool | str | os.PathLike = False, trunk: str = "resnet18",
                    drop_rate: float = 0.0, **kwargs: Any) -> TwoStreamNet:
    """Build a two-stream network for ``in_chans`` views (the backbone factory).

    Parameters
    ----------
    in_chans : int
        Number of views: the channel count of the fused images.
    num_classes : int, default=1
        Outputs of the head.
    pretrained : bool or path, default=False
        ``False``: random weights. ``True``: timm's ImageNet weights for the trunk
        (its first convolution adapted to one channel), downloaded from the hub or
        taken from its cache. A path: either a two-stream weights file (keys
        ``trunk.*``/``fc.*``, e.g. from :meth:`thyronet.SkorchCNN.save_weights`) or
        a weights file of the trunk architecture alone (e.g. timm's
        ``model.safetensors`` of ``resnet18``).
    trunk : str, default="resnet18"
        A timm architecture for the per-view trunk.
    drop_rate : float, default=0.0
        Dropout before the head.
    **kwargs
        More ``timm.create_model`` arguments for the trunk (``drop_path_rate``...).

    Returns
    -------
    TwoStreamNet

    Examples
    --------
    >>> from thyronet_twostream.model import build_twostream
    >>> build_twostream(in_chans=3, trunk="test_resnet").num_features
    288
    """
    if isinstance(pretrained, str | os.PathLike):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
        keys = _read_state(path).keys()
        if any(k.startswith("trunk.") for k in keys):
            net = TwoStreamNet(_create_trunk(trunk, False, **kwargs), in_chans, num_classes,
                               drop_rate)
            return load_weights_file(net, path)
        try:
            body = _create_trunk(trunk, str(path), **kwargs)
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"weights file {str(path)!r} is neither a two-stream file (keys "
                             f"trunk.*) nor weights of the trunk {trunk!r}: {exc}") from exc
        return TwoStreamNet(body, in_chans, num_classes, drop_rate)
    return TwoStreamNet(_create_trunk(trunk, bool(pretrained), **kwargs), in_chans,
                        num_classes, drop_rate)
