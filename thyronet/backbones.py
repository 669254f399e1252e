"""CNN backbones for :class:`thyronet.SkorchCNN`: a registry of timm architectures.

A :class:`Backbone` entry knows how to build a ``torch.nn.Module`` for a channel
count and a number of outputs, its penultimate feature size, the layer Grad-CAM
should target and its preprocessing (input size, per-channel mean/std for any
channel count). Entries are registered through the plugin hook
``thyronet_register_backbones``; this module is the built-in plugin that registers
``resnet101`` (the paper's backbone, the default), other common timm
architectures and the tiny ``test_resnet`` used by fast tests.

Any other model name that timm knows (``timm.list_models()``) works too: it gets a
:class:`Backbone` built from timm's own configuration on first use. Only names
that are neither registered nor known to timm are rejected, with the list of the
registered ones.

Pretrained weights (``pretrained=``):

- ``False``: random initialisation;
- ``True``: timm's ImageNet weights from the Hugging Face hub (online, or from the
  local hub cache ``HF_HUB_CACHE`` when offline);
- a path to a local ``.pth``/``.pt``/``.bin``/``.safetensors`` file, for offline
  machines. The file is checked against the architecture first (missing,
  unexpected and wrongly shaped keys are named), then loaded by timm, which
  adapts the first convolution from the file's channel count (usually RGB) to
  1, 2 or more input channels (:func:`timm.models.adapt_input_conv`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where a net is built, not with the registry
    from torch import nn

    from thyronet.cnn._backbone import BackboneNet

__all__ = [
    "BUILTIN_BACKBONES",
    "WEIGHT_SUFFIXES",
    "Backbone",
    "BackboneNet",
    "Preprocessing",
    "PretrainedWeightsError",
    "WeightsMismatchError",
    "available_backbones",
    "compare_state_dicts",
    "describe_mismatch",
    "get_backbone",
    "resolve_pretrained",
]

#: Served from :mod:`thyronet.cnn._backbone` on first access (PEP 562): it needs torch,
#: which importing this registry must not load.
_TORCH_NAMES = ("BackboneNet",)

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
"""File suffixes accepted for ``pretrained=<path>``."""


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be obtained (no network, no cached file, none exist)."""


class WeightsMismatchError(ValueError):
    """A weights file does not fit the backbone's architecture; the message names the keys."""


@dataclass(frozen=True)
class Preprocessing:
    """How a backbone expects its input.

    Attributes
    ----------
    input_size : tuple of int
        ``(height, width)`` the weights were trained at (a recommendation: the
        networks are fully convolutional and accept other sizes).
    mean, std : tuple of float
        Per-channel normalisation, one value per input channel.
    """

    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _expand_stats(values: Sequence[float], in_chans: int) -> tuple[float, ...]:
    """Per-channel statistics for ``in_chans`` channels from RGB (or any) statistics.

    The same channel count keeps them; any other count uses their average on every
    channel (ultrasound channels are grey-level views, not colours).
    """
    values = tuple(float(v) for v in values)
    if len(values) == in_chans:
        return values
    return (float(np.mean(values)),) * in_chans


@dataclass(frozen=True)
class Backbone:
    """A registered CNN architecture that :class:`thyronet.SkorchCNN` can train.

    Parameters
    ----------
    name : str
        Registry name (``SkorchCNN(backbone=name)``).
    timm_name : str or None
        timm architecture to build (``timm.create_model(timm_name, ...)``);
        ``None`` means ``name``. Ignored when ``factory`` is given.
    feature_dim : int or None
        Size of the penultimate features (2048 for ResNet101); ``None`` reads it
        from the architecture (``num_features``), built on the meta device.
    gradcam_layer : str or None
        Name of the sub-module Grad-CAM should target, relative to the built
        model (``"layer4"`` for ResNets); ``None`` uses the last stage of timm's
        ``feature_info``.
    input_size : tuple of int or None
        ``(height, width)``; ``None`` takes timm's pretrained configuration.
    mean, std : tuple of float or None
        RGB (or per-channel) normalisation; ``None`` takes timm's configuration.
        For another channel count the average is used on every channel.
    factory : callable or None
        For architectures outside timm: ``factory(in_chans=, num_classes=,
        pretrained=, **kwargs) -> nn.Module``. The module must follow timm's
        interface: ``forward``, ``forward_features``, ``forward_head(x,
        pre_logits=True)``, ``get_classifier()`` and ``num_features``.
        A module-level function, so that fitted models pickle.
    description : str
        One line for ``thyronet plugins``.

    Examples
    --------
    >>> from thyronet.backbones import Backbone
    >>> tiny = Backbone("test_resnet")
    >>> tiny.num_features, tiny.target_layer_name
    (96, 'layer4')
    >>> tiny.preprocessing(in_chans=2).mean
    (0.5, 0.5)
    >>> net = tiny.build(in_chans=2, num_classes=1).eval()
    >>> import torch
    >>> net(torch.zeros(1, 2, 32, 32)).shape
    torch.Size([1, 1])
    """

    name: str
    timm_name: str | None = None
    feature_dim: int | None = None
    gradcam_layer: str | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    factory: Callable[..., nn.Module] | None = None
    description: str = ""

    # -- architecture -----------------------------------------------------------------
    @property
    def architecture(self) -> str:
        """The timm architecture name."""
        return self.timm_name or self.name

    def _pretrained_cfg(self) -> dict[str, Any]:
        if self.factory is not None:
            return {}
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(self.architecture)
        return cfg.to_dict() if cfg is not None else {}

    def _meta_model(self) -> nn.Module:
        import torch

        with torch.device("meta"):
            return self._create(in_chans=3, num_classes=0, pretrained=False)

    @property
    def num_features(self) -> int:
        """Size of the penultimate features the backbone produces."""
        if self.feature_dim is not None:
            return int(self.feature_dim)
        return int(self._meta_model().num_features)

    @property
    def target_layer_name(self) -> str:
        """Name of the layer Grad-CAM targets, relative to the built model."""
        if self.gradcam_layer is not None:
            return self.gradcam_layer
        info = getattr(self._meta_model(), "feature_info", None)
        if not info:
            raise ValueError(
                f"backbone {self.name!r} declares no gradcam_layer and its model "
                "has no feature_info to derive one from"
            )
        last = info[-1]
        return last["module"] if isinstance(last, dict) else info.module_name()[-1]

    def preprocessing(self, in_chans: int = 3) -> Preprocessing:
        """Input size and per-channel mean/std for ``in_chans`` channels.

        Parameters
        ----------
        in_chans : int
            Number of input channels (2 for the fused dual-channel images).

        Returns
        -------
        Preprocessing
        """
        if in_chans < 1:
            raise ValueError(f"in_chans must be >= 1, got {in_chans}")
        cfg = self._pretrained_cfg()
        size = self.input_size or tuple(cfg.get("input_size", (3, 224, 224))[1:])
        mean = self.mean or cfg.get("mean", (0.485, 0.456, 0.406))
        std = self.std or cfg.get("std", (0.229, 0.224, 0.225))
        return Preprocessing(
            tuple(int(s) for s in size), _expand_stats(mean, in_chans), _expand_stats(std, in_chans)
        )

    # -- building ---------------------------------------------------------------------
    def _create(
        self, *, in_chans: int, num_classes: int, pretrained: bool, **kwargs: Any
    ) -> nn.Module:
        if self.factory is not None:
            return self.factory(
                in_chans=in_chans, num_classes=num_classes, pretrained=pretrained, **kwargs
            )
        import timm

        return timm.create_model(
            self.architecture,
            pretrained=pretrained,
            in_chans=in_chans,
            num_classes=num_classes,
            **kwargs,
        )

    def build(
        self,
        in_chans: int = 3,
        num_classes: int = 1,
        pretrained: bool | str | os.PathLike = False,
        **kwargs: Any,
    ) -> nn.Module:
        """Build the model for ``in_chans`` input channels and ``num_classes`` outputs.

        Parameters
        ----------
        in_chans : int
            Input channels; pretrained RGB weights are adapted by timm.
        num_classes : int
            Outputs of the classifier head (1 logit for binary tasks, 0 for none).
        pretrained : bool or path
            ``False``, ``True`` (timm hub weights) or a local weights file.
        **kwargs
            Passed to ``timm.create_model`` (e.g. ``drop_rate``, ``drop_path_rate``).

        Returns
        -------
        torch.nn.Module
            A timm-style model (``forward_features``, ``forward_head``).

        Raises
        ------
        PretrainedWeightsError
            ``pretrained=True`` and the weights cannot be fetched or found in the cache.
        FileNotFoundError, ValueError, WeightsMismatchError
            ``pretrained`` is a path that is missing, of an unknown type, or holds
            weights of another architecture.
        """
        if isinstance(pretrained, bool | np.bool_):
            if not pretrained:
                return self._create(
                    in_chans=in_chans, num_classes=num_classes, pretrained=False, **kwargs
                )
            return self._build_from_hub(in_chans, num_classes, **kwargs)
        if isinstance(pretrained, str | os.PathLike):
            return self._build_from_file(Path(pretrained), in_chans, num_classes, **kwargs)
        raise TypeError(
            "pretrained must be False, True or a path to a weights file, "
            f"got {type(pretrained).__name__}"
        )

    def build_net(
        self,
        in_chans: int = 3,
        num_classes: int = 1,
        pretrained: bool | str | os.PathLike = False,
        **kwargs: Any,
    ) -> BackboneNet:
        """Build the model and wrap it with its input normalisation.

        Parameters are those of :meth:`build`.

        Returns
        -------
        BackboneNet
        """
        from thyronet.cnn._backbone import BackboneNet  # the torch side, loaded on use

        model = self.build(
            in_chans=in_chans, num_classes=num_classes, pretrained=pretrained, **kwargs
        )
        pre = self.preprocessing(in_chans)
        return BackboneNet(model, pre.mean, pre.std, target_layer=self.target_layer_name)

    def _build_from_hub(self, in_chans: int, num_classes: int, **kwargs: Any) -> nn.Module:
        try:
            return self._create(
                in_chans=in_chans, num_classes=num_classes, pretrained=True, **kwargs
            )
        except (OSError, RuntimeError, ValueError) as exc:
            cfg = self._pretrained_cfg()
            source = cfg.get("hf_hub_id") or cfg.get("url") or "(no source)"
            raise PretrainedWeightsError(
                f"could not load pretrained weights for backbone {self.name!r} (timm "
                f"{self.architecture!r}) from {source}: {type(exc).__name__}: {exc}\n"
                "On a machine without internet, download the weights elsewhere, e.g. "
                f"`hf download {source} model.safetensors --local-dir weights/`, "
                "copy the file and pass its path: SkorchCNN(backbone="
                f"{self.name!r}, pretrained='weights/model.safetensors') (a .pth file works "
                "too); or set HF_HUB_CACHE to a copied Hugging Face cache."
            ) from exc

    def _build_from_file(
        self, path: Path, in_chans: int, num_classes: int, **kwargs: Any
    ) -> nn.Module:
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
        if path.suffix.lower() not in WEIGHT_SUFFIXES:
            raise ValueError(
                f"pretrained weights file {str(path)!r} has suffix "
                f"{path.suffix!r}; expected one of {', '.join(WEIGHT_SUFFIXES)}"
            )
        if self.factory is not None:
            return self.factory(
                in_chans=in_chans, num_classes=num_classes, pretrained=str(path), **kwargs
            )
        from timm.models import load_state_dict

        try:
            state = load_state_dict(str(path))
        except Exception as exc:
            raise ValueError(
                f"cannot read weights file {str(path)!r}: {type(exc).__name__}: {exc}"
            ) from exc
        cfg = self._pretrained_cfg()
        file_in_chans, file_classes = self._check_state_dict(state, path, in_chans, cfg, kwargs)
        size = tuple(cfg.get("input_size", (3, 224, 224))[1:])
        overlay = {"file": str(path), "input_size": (file_in_chans, *size)}
        if file_classes is not None:
            overlay["num_classes"] = file_classes
        import timm

        return timm.create_model(
            self.architecture,
            pretrained=True,
            in_chans=in_chans,
            num_classes=num_classes,
            pretrained_cfg_overlay=overlay,
            **kwargs,
        )

    def _check_state_dict(
        self, state: dict, path: Path, in_chans: int, cfg: dict, kwargs: dict
    ) -> tuple[int, int | None]:
        """Compare a weights file with the architecture; name every mismatching key."""
        import torch

        with torch.device("meta"):
            reference = self._create(in_chans=in_chans, num_classes=1, pretrained=False, **kwargs)
        expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
        first_convs = cfg.get("first_conv") or ()
        first_convs = (first_convs,) if isinstance(first_convs, str) else tuple(first_convs)
        heads = cfg.get("classifier") or ()
        heads = (heads,) if isinstance(heads, str) else tuple(heads)
        head_keys = {f"{h}.{p}" for h in heads for p in ("weight", "bias")}
        given = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
        optional = {k for k in expected if k.endswith("num_batches_tracked")}
        missing = sorted(set(expected) - set(given) - head_keys - optional)
        unexpected = sorted(set(given) - set(expected) - head_keys)
        wrong = []
        file_in_chans = 3
        for key in sorted(set(expected) & set(given) - head_keys):
            if key.removesuffix(".weight") in first_convs and key.endswith(".weight"):
                file_in_chans = given[key][1] if len(given[key]) == 4 else 3
                if given[key][:1] + given[key][2:] == expected[key][:1] + expected[key][2:]:
                    continue
            if given[key] != expected[key]:
                wrong.append(f"{key} (file {given[key]}, model {expected[key]})")
        problems = describe_mismatch(missing, unexpected, wrong)
        if problems:
            raise WeightsMismatchError(
                f"weights file {str(path)!r} does not match backbone {self.name!r} (timm "
                f"{self.architecture!r}); {problems}"
            )
        file_classes = None
        weight_key = f"{heads[0]}.weight" if heads else None
        if weight_key and weight_key in given and len(given[weight_key]) >= 1:
            file_classes = int(given[weight_key][0])
        return int(file_in_chans), file_classes


def describe_mismatch(
    missing: Sequence[str], unexpected: Sequence[str], wrong_shape: Sequence[str], *, shown: int = 8
) -> str:
    """One line naming the missing, unexpected and wrongly shaped keys ('' if none)."""
    parts = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", wrong_shape),
    ):
        keys = list(keys)
        if keys:
            listed = ", ".join(keys[:shown])
            more = f", ... ({len(keys)} in all)" if len(keys) > shown else ""
            parts.append(f"{label}: {listed}{more}")
    return "; ".join(parts)


def compare_state_dicts(given: dict, expected: dict) -> str:
    """Compare a state dict with a model's; '' when every key and shape matches."""
    given_shapes = {k: tuple(v.shape) for k, v in given.items() if hasattr(v, "shape")}
    expected_shapes = {k: tuple(v.shape) for k, v in expected.items()}
    missing = sorted(set(expected_shapes) - set(given_shapes))
    unexpected = sorted(set(given_shapes) - set(expected_shapes))
    wrong = [
        f"{k} (file {given_shapes[k]}, model {expected_shapes[k]})"
        for k in sorted(set(given_shapes) & set(expected_shapes))
        if given_shapes[k] != expected_shapes[k]
    ]
    return describe_mismatch(missing, unexpected, wrong)


def get_backbone(name: str | Backbone) -> Backbone:
    """Look up a backbone by registry name, or any timm model name.

    Parameters
    ----------
    name : str or Backbone
        A registered name (``thyronet plugins`` lists them), any architecture in
        ``timm.list_models()`` (optionally with a pretrained tag, e.g.
        ``"resnet101.tv_in1k"``), or a :class:`Backbone` (returned as is).

    Returns
    -------
    Backbone

    Raises
    ------
    thyronet.plugins.UnknownEntryError
        The name is neither registered nor known to timm; the message lists the
        registered backbones.

    Examples
    --------
    >>> from thyronet.backbones import get_backbone
    >>> get_backbone("resnet101").num_features
    2048
    >>> get_backbone("mobilenetv3_small_100").name  # any timm model by name
    'mobilenetv3_small_100'
    """
    if isinstance(name, Backbone):
        return name
    from thyronet.plugins import UnknownEntryError, get_registry

    registry = get_registry("backbones")
    if name in registry:
        return registry[name]
    if isinstance(name, str) and name:
        from timm.models import is_model

        if is_model(name):
            return Backbone(name, description="timm model (not registered)")
    available = ", ".join(sorted(registry)) or "(none)"
    raise UnknownEntryError(
        f"unknown backbone {name!r}; registered backbones: {available}; any name in "
        "timm.list_models() also works"
    )


def resolve_pretrained(backbone: str | Backbone, pretrained: bool | str) -> bool | str:
    """Resolve ``pretrained="auto"``: ``True`` when timm's weights for ``backbone``
    are in the local Hugging Face cache, else ``False``; other values pass through.

    Weights are never downloaded to decide; a backbone that is not a timm model
    (a plugin factory) or has no hub weights resolves to ``False``. An unknown
    backbone name raises :class:`~thyronet.plugins.UnknownEntryError`.

    Examples
    --------
    >>> resolve_pretrained("test_resnet", False)
    False
    >>> resolve_pretrained("test_resnet", "auto")  # no cached weights in the tests
    False
    """
    if pretrained != "auto":
        return pretrained
    import timm
    from huggingface_hub import try_to_load_from_cache

    entry = get_backbone(backbone)
    if getattr(entry, "factory", None) is not None:
        return False  # not a timm model: no cache to look in
    cfg = timm.models.get_pretrained_cfg(entry.architecture)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        return False
    for filename in ("model.safetensors", "pytorch_model.bin"):
        hit = try_to_load_from_cache(hub_id.split("@")[0], filename)
        if isinstance(hit, str) and os.path.isfile(hit):
            return True
    return False


def build_backbone_net(
    backbone: str | Backbone,
    in_chans: int,
    num_classes: int = 1,
    pretrained: bool | str | os.PathLike = False,
    backbone_kwargs: dict | None = None,
) -> BackboneNet:
    """Module factory used by SkorchCNN (module-level so that nets pickle)."""
    entry = get_backbone(backbone)
    return entry.build_net(
        in_chans=in_chans, num_classes=num_classes, pretrained=pretrained, **(backbone_kwargs or {})
    )


_build_net = build_backbone_net  # the factory's name in models pickled by earlier releases


def __getattr__(name: str):
    """:class:`BackboneNet` from :mod:`thyronet.cnn._backbone`, loaded on first use."""
    if name in _TORCH_NAMES:
        from thyronet.cnn._backbone import BackboneNet

        return BackboneNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available_backbones() -> list[str]:
    """Sorted names of the registered backbones (any timm model name works too)."""
    from thyronet.plugins import get_registry

    return sorted(get_registry("backbones"))


BUILTIN_BACKBONES: tuple[Backbone, ...] = (
    Backbone(
        "resnet101",
        feature_dim=2048,
        gradcam_layer="layer4",
        description="ResNet101, the paper's backbone (default)",
    ),
    Backbone("resnet18", feature_dim=512, gradcam_layer="layer4", description="ResNet18"),
    Backbone("resnet34", feature_dim=512, gradcam_layer="layer4", description="ResNet34"),
    Backbone("resnet50", feature_dim=2048, gradcam_layer="layer4", description="ResNet50"),
    Backbone(
        "efficientnet_b0", feature_dim=1280, gradcam_layer="bn2", description="EfficientNet-B0"
    ),
    Backbone(
        "convnext_tiny", feature_dim=768, gradcam_layer="stages.3", description="ConvNeXt-Tiny"
    ),
    Backbone(
        "densenet121", feature_dim=1024, gradcam_layer="features.norm5", description="DenseNet121"
    ),
    Backbone(
        "test_resnet",
        feature_dim=96,
        gradcam_layer="layer4",
        description="tiny ResNet (370k parameters) for fast tests",
    ),
)
"""The backbones thyronet registers itself."""
