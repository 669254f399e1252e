"""Saving fitted models as folders that are safe to load: JSON, safetensors and skops.

A saved model is a folder::

    models/combined/
        model.json                 format, versions, threshold, configuration, the
                                   SHA-256 of every file below and of model.json's own
                                   content (written last)
        model.skops                the scikit-learn parts (skops.io: no code runs on load)
        weights/0.safetensors      the weights of each fitted SkorchCNN (safetensors)

Nothing in the folder is a pickle. :func:`save_model` replaces every fitted
:class:`~thyronet.SkorchCNN` in the estimator by an unfitted clone that names its
weights file, and pandas objects in fitted attributes by their JSON text;
:func:`load_model` reverses both after loading ``model.skops`` with
:func:`skops.io.load`, trusting only the types in :data:`TRUSTED_TYPES` (beyond the
numpy/scipy/scikit-learn types skops trusts by default). A file that asks for any
other type is refused with a message naming the types, before anything is built.

:func:`load_model` also reads ``model.json`` first and refuses to load anything when
the folder is incomplete, was written by an incompatible thyronet version, or when a
file does not match its recorded SHA-256 (a truncated, corrupted or replaced file).
Weights saved on a GPU load on a CPU-only machine (``device`` falls back to
``"cpu"``).
"""

from __future__ import annotations

import copy
import errno
import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ModelFileError",
    "load_model",
    "read_model_info",
    "save_model",
    "verify_model",
]

FORMAT = "thyronet-model"
FORMAT_VERSION = 2
MODEL_FILE = "model.skops"
INFO_FILE = "model.json"
WEIGHTS_DIR = "weights"
#: The key of ``model.json`` holding the SHA-256 of the rest of ``model.json``.
INTEGRITY_KEY = "info_sha256"
_VERSIONED = (
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "timm",
    "skorch",
    "lightgbm",
    "skops",
    "safetensors",
)

#: Types, beyond skops' default trusted set, that :func:`load_model` lets
#: :func:`skops.io.load` build. A model file that asks for anything else is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "numpy.dtype",
    "thyronet.classifier_selection.ClassifierSelector",
    "thyronet.clinical.ClinicalEncoder",
    "thyronet.cnn.InferencePath",
    "thyronet.cnn.SkorchCNN",
    "thyronet.features.DeepFeatureExtractor",
    "thyronet.fusion.DualChannelFuser",
    "thyronet.pipelines.CohortColumns",
    "thyronet.pipelines.RowIndexPipeline",
    "thyronet.selection.LassoSelector",
    "thyronet.selection.PValueSelector",
)

# marker attribute of a SkorchCNN stand-in (its weights file and small fitted attributes)
_WEIGHTS_MARK = "_thyronet_weights"
# marker key of a dict standing in for a pandas object
_PANDAS_MARK = "__thyronet_pandas__"
_CNN_ATTRS = ("n_epochs_", "best_epoch_", "logit_offset_")


class ModelFileError(RuntimeError):
    """A model folder that is missing, incomplete, incompatible or tampered with."""


# What reading model.skops raises for a file that is not a valid skops archive: a
# broken zip, a missing or malformed schema inside it (json / KeyError / ValueError).
_UNREADABLE: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    KeyError,
)
# ... and what building it raises when it does not fit this installation: classes or
# attributes that changed (TypeError / AttributeError / ImportError), weights that do
# not fit the network (torch's RuntimeError) or a broken safetensors file.
_UNLOADABLE: tuple[type[BaseException], ...] = (
    TypeError,
    AttributeError,
    ImportError,
    RuntimeError,
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _release(version: str) -> tuple[int, ...]:
    """``(major, minor)`` of a version string such as ``"0.1.0.dev0"``."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and tuples so that ``json.dumps`` accepts them."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _info_checksum(info: dict) -> str:
    """SHA-256 of ``model.json``'s content without its own checksum (canonical JSON)."""
    body = {k: v for k, v in info.items() if k != INTEGRITY_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _digest(files: dict) -> str:
    """One SHA-256 over the checksums of all files of a model."""
    text = json.dumps({k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def _walkable(obj: Any) -> bool:
    """Objects whose attributes are walked: estimators and other thyronet/sklearn objects.

    Not :func:`thyronet._walk.walk_fitted`: that yields the fitted sub-estimators;
    saving must copy the object graph and replace values in it (a SkorchCNN in any
    attribute, list or dict, pandas objects in fitted attributes), so it walks every
    attribute.
    """
    from sklearn.base import BaseEstimator

    module = type(obj).__module__ or ""
    return (
        hasattr(obj, "__dict__")
        and not isinstance(obj, type)
        and (isinstance(obj, BaseEstimator) or module.split(".")[0] in ("thyronet", "sklearn"))
    )


def _strip(obj: Any, folder: Path, weights: list[str], memo: dict) -> Any:
    """A copy of ``obj`` with fitted SkorchCNNs saved as safetensors, pandas as plain data."""
    import pandas as pd
    from sklearn.base import clone

    from thyronet.cnn import SkorchCNN

    key = id(obj)
    if key in memo:
        return memo[key][1]
    if isinstance(obj, SkorchCNN) and hasattr(obj, "net_"):
        rel = f"{WEIGHTS_DIR}/{len(weights)}.safetensors"
        (folder / WEIGHTS_DIR).mkdir(exist_ok=True)
        obj.save_weights(folder / rel)
        weights.append(rel)
        out = clone(obj)
        setattr(
            out,
            _WEIGHTS_MARK,
            {"file": rel, **{a: _jsonable(getattr(obj, a, None)) for a in _CNN_ATTRS}},
        )
    elif isinstance(obj, pd.DataFrame | pd.Series):
        out = _pandas_state(obj)
    elif isinstance(obj, dict) and type(obj) is dict:
        out = {k: _strip(v, folder, weights, memo) for k, v in obj.items()}
    elif type(obj) in (list, tuple):
        out = type(obj)(_strip(v, folder, weights, memo) for v in obj)
    elif _walkable(obj):
        out = copy.copy(obj)
        for name, value in vars(obj).items():
            new = _strip(value, folder, weights, memo)
            if new is not value:
                out.__dict__[name] = new
        if all(out.__dict__[k] is v for k, v in vars(obj).items()):
            out = obj
    else:
        out = obj
    memo[key] = (obj, out)  # keeps obj alive, so that its id is not reused
    return out


def _pandas_state(obj: Any) -> dict:
    """A DataFrame or Series as plain lists and numeric arrays (skops stores no pandas)."""
    import pandas as pd

    kind = type(obj).__name__
    frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
    simple = (
        not isinstance(frame.index, pd.MultiIndex)
        and not isinstance(frame.columns, pd.MultiIndex)
        and frame.columns.is_unique
    )
    if not simple:
        return {_PANDAS_MARK: kind, "json": obj.to_json(orient="table", double_precision=15)}
    columns = []
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind in "biuf":
            columns.append({"dtype": None, "values": col.to_numpy()})
        else:
            columns.append({"dtype": str(col.dtype), "values": _jsonable(col.tolist())})
    index = frame.index
    return {
        _PANDAS_MARK: kind,
        "names": _jsonable(list(frame.columns)),
        "series_name": _jsonable(obj.name) if kind == "Series" else None,
        "index": (index.to_numpy() if index.dtype.kind in "biuf" else _jsonable(index.tolist())),
        "index_name": _jsonable(index.name),
        "columns": columns,
    }


def _pandas_from_state(state: dict) -> Any:
    import pandas as pd

    kind = state[_PANDAS_MARK]
    if "json" in state:
        return pd.read_json(
            io.StringIO(state["json"]),
            orient="table",
            typ="series" if kind == "Series" else "frame",
        )
    index = pd.Index(state["index"], name=state["index_name"])
    data = {}
    for name, col in zip(state["names"], state["columns"], strict=True):
        values = col["values"]
        data[name] = (
            pd.Series(values, index=index)
            if col["dtype"] is None
            else pd.Series(values, index=index, dtype=col["dtype"])
        )
    frame = pd.DataFrame(data, index=index, columns=state["names"])
    if kind == "Series":
        out = frame.iloc[:, 0]
        out.name = state["series_name"]
        return out
    return frame


def _restore(obj: Any, folder: Path, files: set[str], memo: dict) -> Any:
    """Undo :func:`_strip` on a loaded object graph (in place where possible)."""
    import torch

    from thyronet.cnn import SkorchCNN

    key = id(obj)
    if key in memo:
        return memo[key][1]
    out = obj
    memo[key] = (obj, out)
    if isinstance(obj, SkorchCNN) and _WEIGHTS_MARK in vars(obj):
        mark = vars(obj).pop(_WEIGHTS_MARK)
        rel = mark.get("file") if isinstance(mark, dict) else None
        if not isinstance(rel, str) or not rel.endswith(".safetensors") or rel not in files:
            raise ModelFileError(
                f"{folder / MODEL_FILE} names a weights file {rel!r} that "
                f"is not a checked safetensors file of {INFO_FILE}"
            )
        device = str(obj.device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            obj.set_params(device="cpu")  # a model trained on a GPU, loaded on a CPU
        obj.load_weights(folder / rel)
        for attr in _CNN_ATTRS:
            if attr in mark:
                setattr(obj, attr, mark[attr])
    elif isinstance(obj, dict) and _PANDAS_MARK in obj:
        out = _pandas_from_state(obj)
    elif type(obj) is dict:
        for k, v in list(obj.items()):
            obj[k] = _restore(v, folder, files, memo)
    elif type(obj) is list:
        obj[:] = [_restore(v, folder, files, memo) for v in obj]
    elif type(obj) is tuple:
        new = tuple(_restore(v, folder, files, memo) for v in obj)
        if any(a is not b for a, b in zip(new, obj, strict=True)):
            out = new
    elif _walkable(obj):
        for name, value in list(vars(obj).items()):
            new = _restore(value, folder, files, memo)
            if new is not value:
                obj.__dict__[name] = new
        cnn = vars(obj).get("cnn_")
        if (
            isinstance(cnn, SkorchCNN)
            and hasattr(cnn, "device_")
            and hasattr(obj, "precision_")
            and hasattr(obj, "_resolve_precision")
        ):
            obj.precision_ = obj._resolve_precision(cnn.device_)
    memo[key] = (obj, out)
    return out


def save_model(
    model: Any,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    threshold: float | None = None,
    metadata: dict | None = None,
) -> Path:
    """Save a fitted model to the folder ``path`` (created; an existing one is replaced).

    The files are written to a staging folder next to ``path``, flushed to disk and
    renamed into place, so an interrupted save never leaves a folder that looks
    finished (the old model, if any, stays until the new one is complete).

    Parameters
    ----------
    model : estimator
        A fitted estimator (scikit-learn, thyronet, LightGBM parts; fitted
        :class:`~thyronet.SkorchCNN` networks anywhere in it go to safetensors files).
    path : str or path-like
        Target folder.
    name : str, optional
        Model name recorded in the metadata (default: the folder name).
    threshold : float, optional
        Decision threshold on the predicted probability used by ``thyronet predict``
        (e.g. the Youden threshold on the training cohort).
    metadata : dict, optional
        More JSON-serialisable information (configuration, feature names, ...).

    Returns
    -------
    pathlib.Path
        The folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.linear_model import LogisticRegression
    >>> from thyronet.model_io import load_model, save_model
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "lr"
    >>> _ = save_model(LogisticRegression().fit([[0], [1]], [0, 1]), folder, threshold=0.4)
    >>> model, info = load_model(folder)
    >>> info["threshold"], type(model).__name__
    (0.4, 'LogisticRegression')
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ModelFileError(f"cannot save a model to {folder}: it is a file, not a folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # written in a staging folder next to the target, synced, then renamed into place:
    # an interrupted or killed save never leaves a folder that looks finished
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        _write_folder(model, staging, name or folder.name, threshold, metadata)
        _fsync_tree(staging)
        _swap_in(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


def _write_folder(
    model: Any, folder: Path, name: str, threshold: float | None, metadata: dict | None
) -> None:
    """Write the model's files and, last, ``model.json`` into the empty ``folder``."""
    import skops.io as sio

    from thyronet import __version__

    weights: list[str] = []
    stripped = _strip(model, folder, weights, {})
    sio.dump(stripped, folder / MODEL_FILE)
    files = {}
    for rel in (MODEL_FILE, *weights):
        files[rel] = {"sha256": _sha256(folder / rel), "bytes": (folder / rel).stat().st_size}
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "thyronet_version": __version__,
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "threshold": None if threshold is None else float(threshold),
        "feature_names": _feature_names(model),
        "files": files,
        "digest": _digest(files),
        "metadata": _jsonable(metadata or {}),
    }
    info[INTEGRITY_KEY] = _info_checksum(info)
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, allow_nan=False))


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder``, and the folders themselves, to the disk."""
    for item in sorted(folder.rglob("*"), reverse=True):
        _fsync(item)
    _fsync(folder)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except (IsADirectoryError, PermissionError):  # folders cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems refuse fsync on folders
        if not path.is_dir() or err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _swap_in(staging: Path, folder: Path) -> None:
    """Rename the finished ``staging`` folder to ``folder``, replacing an older one."""
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.replaced-{staging.name.rsplit('-', 1)[-1]}"
        os.replace(folder, old)
    os.replace(staging, folder)
    _fsync(folder.parent)
    if old is not None:
        shutil.rmtree(old)


def read_model_info(path: str | os.PathLike) -> dict:
    """Read and check ``model.json`` of a model folder (without loading the model).

    Raises
    ------
    ModelFileError
        The folder or its metadata is missing or unreadable, or it was written
        in another format or by an incompatible thyronet version.

    Examples
    --------
    >>> import tempfile
    >>> from thyronet.model_io import ModelFileError, read_model_info
    >>> try:
    ...     read_model_info(tempfile.mkdtemp())
    ... except ModelFileError as err:
    ...     print("model.json" in str(err))
    True
    """
    from thyronet import __version__

    folder = Path(path)
    if not folder.is_dir():
        raise ModelFileError(
            f"model folder {str(folder)!r} does not exist (a saved model is "
            f"a folder holding {INFO_FILE} and {MODEL_FILE})"
        )
    info_path = folder / INFO_FILE
    if not info_path.is_file():
        raise ModelFileError(
            f"{str(folder)!r} is not a finished thyronet model: {INFO_FILE} "
            "is missing (the save was interrupted, or this is another folder)"
        )
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"cannot read {info_path}: {err}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelFileError(
            f"{info_path} is not thyronet model metadata (expected format {FORMAT!r})"
        )
    if info.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{info_path} has model format version {info.get('format_version')!r}; this "
            f"thyronet ({__version__}) reads version {FORMAT_VERSION}"
        )
    saved = str(info.get("thyronet_version", "?"))
    if _release(saved) != _release(__version__):
        raise ModelFileError(
            f"model {str(folder)!r} was saved by thyronet {saved}, which is incompatible with "
            f"the installed thyronet {__version__} (models load only within the same "
            f"major.minor release); refit it, or install thyronet {saved}"
        )
    if info.get(INTEGRITY_KEY) != _info_checksum(info):
        raise ModelFileError(
            f"{info_path} was changed after saving (its {INTEGRITY_KEY} does not match its "
            "content: a threshold, configuration or checksum edited by hand); refusing to "
            "load it. To use another threshold, pass --threshold to `thyronet predict`; to "
            "change the configuration, refit the model"
        )
    return info


def verify_model(path: str | os.PathLike) -> dict:
    """Check a model folder's metadata and the checksum of its model file.

    Returns the metadata; raises :class:`ModelFileError` on any problem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.dummy import DummyClassifier
    >>> from thyronet.model_io import save_model, verify_model
    >>> folder = save_model(DummyClassifier().fit([[0], [1]], [0, 1]),
    ...                     pathlib.Path(tempfile.mkdtemp()) / "m")
    >>> verify_model(folder)["format"]
    'thyronet-model'
    """
    folder = Path(path)
    info = read_model_info(folder)
    files = info.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise ModelFileError(f"{folder / INFO_FILE} lists no checksum for {MODEL_FILE}")
    for rel, entry in files.items():
        target = folder / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not isinstance(entry, dict):
            raise ModelFileError(f"{folder / INFO_FILE} lists an invalid file entry {rel!r}")
        if not target.is_file():
            raise ModelFileError(f"{target} is missing")
        expected = entry.get("sha256")
        actual = _sha256(target)
        if actual != expected:
            raise ModelFileError(
                f"{target} does not match the SHA-256 recorded in {INFO_FILE} (expected "
                f"{str(expected)[:12]}..., got {actual[:12]}...): the file was modified, "
                "corrupted or replaced after saving; refusing to load it"
            )
    info.setdefault("digest", _digest(files))
    return info


def load_model(path: str | os.PathLike) -> tuple[Any, dict]:
    """Load a model folder written by :func:`save_model`, after checking it.

    Parameters
    ----------
    path : str or path-like
        The model folder.

    Returns
    -------
    model : estimator
    info : dict
        The metadata of ``model.json``.

    Raises
    ------
    ModelFileError
        Missing or incomplete folder, incompatible version, checksum mismatch.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.dummy import DummyClassifier
    >>> from thyronet.model_io import load_model, save_model
    >>> folder = save_model(DummyClassifier().fit([[0], [1]], [0, 1]),
    ...                     pathlib.Path(tempfile.mkdtemp()) / "dummy")
    >>> load_model(folder)[1]["name"]
    'dummy'
    """
    import skops.io as sio
    from safetensors import SafetensorError

    info = verify_model(path)
    folder = Path(path)
    target = folder / MODEL_FILE
    try:
        untrusted = sio.get_untrusted_types(file=target)
    except _UNREADABLE as err:  # not a zip, no/invalid schema in it
        raise ModelFileError(f"cannot read {target}: {type(err).__name__}: {err}") from err
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelFileError(
            f"{target} asks for type(s) that thyronet does not trust to load: "
            f"{', '.join(refused)}; refusing to load it (only scikit-learn, numpy, scipy "
            "and the types in thyronet.model_io.TRUSTED_TYPES are built)"
        )
    try:
        model = sio.load(target, trusted=sorted(set(untrusted)))
        model = _restore(model, folder, set(info["files"]), {})
    except ModelFileError:
        raise
    except (*_UNREADABLE, *_UNLOADABLE, SafetensorError) as err:
        raise ModelFileError(f"cannot load {target}: {type(err).__name__}: {err}") from err
    return model, info
