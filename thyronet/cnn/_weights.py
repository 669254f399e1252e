"""Weight files of a fitted CNN: writing, reading and checking them against a backbone.

:meth:`SkorchCNN.save_weights <thyronet.SkorchCNN.save_weights>` writes the timm
state dict with thyronet's metadata (backbone, channel count, classes) as a
``.safetensors`` file or a ``torch.save`` checkpoint; :func:`read_weights` reads
either back. The torch-free pieces (errors, key comparison) live in
:mod:`thyronet.backbones` and are re-exported here.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from thyronet.backbones import (
    WEIGHT_SUFFIXES,
    PretrainedWeightsError,
    WeightsMismatchError,
    compare_state_dicts,
    describe_mismatch,
)

__all__ = [
    "WEIGHT_SUFFIXES",
    "PretrainedWeightsError",
    "WeightsMismatchError",
    "compare_state_dicts",
    "describe_mismatch",
    "read_weights",
    "weights_channels",
    "write_weights",
]


def write_weights(
    path: str | os.PathLike, model: torch.nn.Module, backbone: str, n_channels: int, classes
) -> Path:
    """Write ``model``'s state dict with its metadata; ``.safetensors`` or ``torch.save``."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {
        "thyronet.backbone": backbone,
        "thyronet.in_chans": str(int(n_channels)),
        "thyronet.classes": json.dumps(np.asarray(classes).tolist()),
    }
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"format": "pt", **meta})
    else:
        torch.save({"state_dict": state, "thyronet": meta}, path)
    return path


def read_weights(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """``(metadata, state dict)`` of a file written by :func:`write_weights` (or a bare one).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A ``torch.save`` file that cannot be read (safely: ``weights_only=True``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {}), {k: handle.get_tensor(k) for k in handle.keys()}
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise ValueError(f"cannot read weights file {str(path)!r}: {exc}") from exc
    if isinstance(payload, dict) and "state_dict" in payload:
        return dict(payload.get("thyronet") or {}), payload["state_dict"]
    return {}, payload


def weights_channels(meta: dict[str, str], state: dict, path: str | os.PathLike) -> int:
    """The input channel count of saved weights: from the metadata, else the first conv."""
    if "thyronet.in_chans" in meta:
        return int(meta["thyronet.in_chans"])
    first = next((v for v in state.values() if getattr(v, "ndim", 0) == 4), None)
    if first is None:
        raise WeightsMismatchError(f"weights file {str(path)!r} has no convolution")
    return int(first.shape[1])
