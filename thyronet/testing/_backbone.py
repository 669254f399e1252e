"""The contract check of a CNN backbone (:func:`check_backbone`).

torch is imported when a check runs, so that ``import thyronet.testing`` (in a
fusion plugin's test suite, say) does not load it.
"""

from __future__ import annotations

import copy
import io
import pickle
import tempfile
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from thyronet.testing._harness import _fail, _resolve, _with_entry


def check_backbone(
    backbone: Any,
    *,
    image_size: int = 32,
    channels: Sequence[int] = (1, 2, 3),
    batch_size: int = 2,
    check_pretrained: bool = True,
    check_estimators: bool = True,
) -> None:
    """Check that a backbone keeps the contract of :class:`~thyronet.backbones.Backbone`.

    For each channel count in ``channels`` the backbone is built (``build_net``,
    random weights) and checked:

    - the forward pass gives ``(n, 1)`` finite logits, ``forward_features`` gives
      ``(n, F)`` with F the model's ``num_features`` (and the declared
      ``feature_dim``, when the backbone declares one);
    - the backward pass reaches the input and every trainable parameter; the
      classifier head (trained alone while the body is frozen) is a proper part
      of the parameters;
    - the Grad-CAM target layer exists, gives ``(n, k, h, w)`` activations on the
      path to the logit, and ``pytorch_grad_cam.GradCAM`` produces one finite
      ``(H, W)`` map per image;
    - preprocessing gives one mean/std per channel; eval mode is deterministic;
    - the built model survives ``copy.deepcopy`` and pickling with identical outputs.

    Also checked: ``pretrained=False`` gives random weights (two seeds differ) and
    ``pretrained=<weights file>`` loads that file exactly (``check_pretrained``;
    ``pretrained=True`` needs the internet and is not checked); the entry pickles;
    and (``check_estimators``) a tiny :class:`~thyronet.SkorchCNN` fit on 2-channel
    images, its clone (unfitted), pickling (same probabilities) and
    :class:`~thyronet.DeepFeatureExtractor` (the penultimate features).

    Parameters
    ----------
    backbone : str or Backbone
        A registered name, or a backbone not registered yet.
    image_size : int, default=32
        Side of the random test images.
    channels : sequence of int, default=(1, 2, 3)
        Channel counts to build for.
    batch_size : int, default=2
        Images per test batch (at least 2: BatchNorm needs them in training mode).
    check_pretrained : bool, default=True
        Check the ``pretrained`` flag (builds the model three more times).
    check_estimators : bool, default=True
        Fit a tiny SkorchCNN and a DeepFeatureExtractor with the backbone.

    Raises
    ------
    AssertionError
        Naming the backbone and the broken part of the contract.

    Examples
    --------
    >>> from thyronet.testing import check_backbone
    >>> check_backbone("test_resnet", channels=(2,), check_estimators=False)
    """
    import torch

    from thyronet.backbones import Backbone, BackboneNet

    name, entry, registered = _resolve("backbones", backbone, Backbone)
    where = f"backbone {name!r}"
    if registered and entry.name != name:
        raise _fail(
            where,
            f"is registered under {name!r} but its Backbone.name is "
            f"{entry.name!r}; use the same name",
        )
    if batch_size < 2:
        raise ValueError("batch_size must be at least 2")
    try:
        restored = pickle.loads(pickle.dumps(entry))
    except Exception as exc:
        raise _fail(
            where,
            f"the Backbone entry does not pickle ({type(exc).__name__}: {exc}); "
            "its factory must be a module-level function (or a "
            "functools.partial of one)",
        ) from exc
    if restored.name != entry.name:
        raise _fail(where, "a pickled copy of the entry has another name")
    try:
        target_name = entry.target_layer_name
    except Exception as exc:
        raise _fail(where, f"has no Grad-CAM target layer: {type(exc).__name__}: {exc}") from exc

    # an entry not registered yet is registered for the checks (its name must be free);
    # the seeds the checks set do not leak into the caller's random state
    with (
        nullcontext() if registered else _with_entry("backbones", name, entry),
        torch.random.fork_rng(devices=[]),
    ):
        for in_chans in channels:
            _check_backbone_channels(
                where, entry, in_chans, image_size, batch_size, target_name, torch, BackboneNet
            )
        if check_pretrained:
            _check_pretrained_flag(where, entry, torch)
        if check_estimators:
            _check_backbone_estimators(where, name, entry, image_size)


def _build(where: str, entry, torch, seed: int, **kwargs):
    torch.manual_seed(seed)
    try:
        return entry.build_net(**kwargs)
    except Exception as exc:
        raise _fail(
            where,
            f"build_net({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
            f"raised {type(exc).__name__}: {exc}",
        ) from exc


def _check_backbone_channels(
    where, entry, in_chans, size, n, target_name, torch, BackboneNet
) -> None:
    case = f"{in_chans} channel(s)"
    net = _build(where, entry, torch, 0, in_chans=in_chans, num_classes=1, pretrained=False)
    if not isinstance(net, BackboneNet):
        raise _fail(where, f"build_net returned {type(net).__name__}, not a BackboneNet")
    model = net.model
    for attr in ("forward_features", "forward_head", "get_classifier", "num_features"):
        if not hasattr(model, attr):
            raise _fail(
                where,
                f"the built model has no {attr!r} (timm's interface is needed: "
                "forward_features, forward_head(x, pre_logits=True), "
                "get_classifier(), num_features)",
            )
    pre = entry.preprocessing(in_chans)
    if len(pre.mean) != in_chans or len(pre.std) != in_chans or min(pre.std) <= 0:
        raise _fail(
            where,
            f"preprocessing({in_chans}) gives mean {pre.mean} and std "
            f"{pre.std}; expected {in_chans} values each, std > 0",
        )
    torch.manual_seed(1)
    x = torch.rand(n, in_chans, size, size, requires_grad=True)
    net.train()
    try:
        logits = net(x)
    except Exception as exc:
        raise _fail(
            where, f"forward failed for {case} at {size}x{size}: {type(exc).__name__}: {exc}"
        ) from exc
    if tuple(logits.shape) != (n, 1):
        raise _fail(
            where,
            f"forward returned shape {tuple(logits.shape)} for {n} images with "
            f"num_classes=1; expected ({n}, 1) ({case})",
        )
    if not torch.isfinite(logits).all():
        raise _fail(where, f"forward returned NaN or infinite logits ({case})")
    logits.sum().backward()
    if (
        x.grad is None
        or tuple(x.grad.shape) != tuple(x.shape)
        or not torch.isfinite(x.grad).all()
        or not x.grad.abs().sum() > 0
    ):
        raise _fail(where, f"the backward pass does not reach the input images ({case})")
    params = dict(net.named_parameters())
    no_grad = [k for k, p in params.items() if p.requires_grad and p.grad is None]
    if no_grad:
        raise _fail(
            where,
            f"parameters get no gradient from the logit ({case}): "
            f"{', '.join(no_grad[:5])}" + (" ..." if len(no_grad) > 5 else ""),
        )
    head = {id(p) for p in net.head_parameters()}
    if not head or len(head) >= len(params):
        raise _fail(
            where,
            f"get_classifier() must be the classifier head, a proper part of "
            f"the parameters; it holds {len(head)} of {len(params)} tensors",
        )
    net.zero_grad(set_to_none=True)

    with torch.no_grad():
        features = net.forward_features(x.detach())
    declared = int(model.num_features)
    if tuple(features.shape) != (n, declared):
        raise _fail(
            where,
            f"forward_features returned shape {tuple(features.shape)}; the model "
            f"declares num_features={declared} ({case})",
        )
    if entry.feature_dim is not None and declared != entry.feature_dim:
        raise _fail(
            where,
            f"declares feature_dim={entry.feature_dim} but the model built for "
            f"{case} has {declared} features",
        )
    if in_chans == 3 and entry.num_features != declared:
        raise _fail(
            where,
            f"Backbone.num_features is {entry.num_features} but the model built "
            f"for 3 channels has {declared} features",
        )

    _check_gradcam(where, net, x.detach(), target_name, case, torch)

    net.eval()
    with torch.no_grad():
        first = net(x.detach())
        second = net(x.detach())
        if not torch.equal(first, second):
            raise _fail(where, f"eval-mode forward is not deterministic ({case})")
        for label, other in (
            ("copy.deepcopy", copy.deepcopy(net)),
            ("pickling", _pickled(net, torch)),
        ):
            other.eval()
            if not torch.allclose(other(x.detach()), first, atol=1e-6):
                raise _fail(where, f"{label} of the built model gives other outputs ({case})")


def _pickled(net, torch):
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _check_gradcam(where, net, x, target_name, case, torch) -> None:
    try:
        target = net.gradcam_target()
    except AttributeError as exc:
        layers = [k for k, _ in net.model.named_modules() if k and k.count(".") < 1]
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} does not exist in the "
            f"built model ({exc}); top-level modules: {layers}",
        ) from exc
    seen: list = []
    handle = target.register_forward_hook(lambda module, args, out: seen.append(out))
    try:
        net.eval()
        activations = None
        with torch.enable_grad():
            logits = net(x)
            if seen:
                activations = seen[-1]
            if isinstance(activations, torch.Tensor) and activations.requires_grad:
                grad = torch.autograd.grad(logits.sum(), activations, allow_unused=True)[0]
            else:
                grad = None
    finally:
        handle.remove()
    if len(seen) != 1:
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} ran {len(seen)} times "
            "in one forward pass; Grad-CAM needs exactly one activation per image "
            "batch",
        )
    if (
        not isinstance(activations, torch.Tensor)
        or activations.ndim != 4
        or activations.shape[0] != x.shape[0]
    ):
        shape = tuple(getattr(activations, "shape", ()))
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} outputs {shape}; "
            f"Grad-CAM needs (n_images={x.shape[0]}, channels, h, w) ({case})",
        )
    if grad is None or not grad.abs().sum() > 0:
        raise _fail(
            where,
            f"the Grad-CAM target layer {target_name!r} is not on the path to "
            f"the logit (zero gradient) ({case})",
        )
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=net, target_layers=[target]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(0)] * x.shape[0])
    if maps.shape != (x.shape[0], *x.shape[2:]) or not np.all(np.isfinite(maps)):
        raise _fail(
            where,
            f"pytorch_grad_cam.GradCAM returned maps of shape {maps.shape}; "
            f"expected {(x.shape[0], *x.shape[2:])}, finite ({case})",
        )


def _check_pretrained_flag(where, entry, torch) -> None:
    first = _build(where, entry, torch, 10, in_chans=3, num_classes=1, pretrained=False)
    second = _build(where, entry, torch, 11, in_chans=3, num_classes=1, pretrained=False)
    a, b = first.model.state_dict(), second.model.state_dict()
    if all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point()):
        raise _fail(
            where,
            "pretrained=False gives the same weights under two seeds: it must initialise randomly",
        )
    with tempfile.TemporaryDirectory(prefix="thyronet-check-") as folder:
        path = Path(folder) / "weights.pth"
        torch.save({k: v.detach().clone() for k, v in a.items()}, path)
        loaded = _build(where, entry, torch, 12, in_chans=3, num_classes=1, pretrained=str(path))
        got = loaded.model.state_dict()
        wrong = [
            k
            for k, v in a.items()
            if k not in got or got[k].shape != v.shape or not torch.equal(got[k], v)
        ]
        if wrong:
            raise _fail(
                where,
                f"pretrained=<weights file> did not load the file: "
                f"{len(wrong)} tensor(s) differ, e.g. {', '.join(wrong[:3])}",
            )
        missing_file = Path(folder) / "missing.pth"
        try:
            entry.build(in_chans=3, num_classes=1, pretrained=str(missing_file))
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise _fail(
                where,
                f"pretrained=<missing file> raised {type(exc).__name__} "
                "instead of FileNotFoundError",
            ) from exc
        else:
            raise _fail(where, "pretrained=<missing file> built a model instead of failing")


def _check_backbone_estimators(where, name, entry, size) -> None:
    from thyronet.cnn import SkorchCNN
    from thyronet.features import DeepFeatureExtractor

    rng = np.random.default_rng(0)
    X = rng.random((6, 2, size, size), dtype=np.float32)
    y = np.arange(6) % 2
    cnn = SkorchCNN(
        backbone=name,
        max_epochs=1,
        batch_size=3,
        validation_fraction=None,
        early_stopping=False,
        augment=False,
        warmup_epochs=0,
        device="cpu",
        precision="fp32",
        verbose=0,
        random_state=0,
    )
    try:
        cnn.fit(X, y)
        proba = cnn.predict_proba(X)
    except Exception as exc:
        raise _fail(
            where,
            f"SkorchCNN(backbone={name!r}) failed to fit/predict 2-channel "
            f"images: {type(exc).__name__}: {exc}",
        ) from exc
    if proba.shape != (6, 2) or not np.allclose(proba.sum(axis=1), 1, atol=1e-5):
        raise _fail(where, f"SkorchCNN.predict_proba returned shape {proba.shape}")
    unfitted = clone(cnn)
    if hasattr(unfitted, "net_") or unfitted.get_params()["backbone"] != name:
        raise _fail(where, "clone() of a fitted SkorchCNN must be unfitted with the same backbone")
    restored = pickle.loads(pickle.dumps(cnn))
    if not np.allclose(restored.predict_proba(X), proba, atol=1e-6):
        raise _fail(where, "a pickled SkorchCNN predicts other probabilities")
    extractor = DeepFeatureExtractor(FrozenEstimator(cnn), precision="fp32", batch_size=4).fit(X)
    features = extractor.transform(X)
    if features.shape != (6, cnn.feature_dim_):
        raise _fail(
            where,
            f"DeepFeatureExtractor returned shape {features.shape}; expected "
            f"(6, {cnn.feature_dim_})",
        )
    import torch

    module = cnn.net_.module_
    module.eval()
    with torch.no_grad():
        direct = module.forward_features(torch.from_numpy(X)).float().numpy()
    if not np.allclose(features, direct, rtol=1e-4, atol=1e-5):
        raise _fail(where, "DeepFeatureExtractor features differ from forward_features")
