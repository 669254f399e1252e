"""Saving fitted models as folders: the model, its metadata in JSON and a checksum.

A saved model is a folder::

    models/combined/
        model.joblib     the fitted estimator (joblib)
        model.json       format, versions, threshold, configuration, SHA-256 of model.joblib

:func:`load_model` reads ``model.json`` first and refuses to unpickle anything
when the folder is incomplete, was written by an incompatible thyronet version,
or when ``model.joblib`` does not match its recorded SHA-256 (a truncated,
corrupted or replaced file). ``model.json`` is written last, so an interrupted
save never looks finished.

.. warning::
   The checksum detects accidental damage and files swapped after saving; it is
   **not** a defence against a deliberately crafted folder (whoever writes the
   pickle can write a matching checksum). Unpickling runs code: load model
   folders only from sources you trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load_model", "read_model_info",
           "save_model", "verify_model"]

FORMAT = "thyronet-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
INFO_FILE = "model.json"
_VERSIONED = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "timm", "skorch", "lightgbm",
              "joblib")


class ModelFileError(RuntimeError):
    """A model folder that is missing, incomplete, incompatible or tampered with."""


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


def save_model(model: Any, path: str | os.PathLike, *, name: str | None = None,
               threshold: float | None = None, metadata: dict | None = None) -> Path:
    """Save a fitted model to the folder ``path`` (created; existing files are replaced).

    Parameters
    ----------
    model : estimator
        A fitted estimator (anything joblib can pickle).
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
    import joblib

    from thyronet import __version__

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    info_path = folder / INFO_FILE
    if info_path.exists():  # the folder stops looking finished before anything changes
        info_path.unlink()
    fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".joblib.tmp", dir=folder)
    os.close(fd)
    try:
        joblib.dump(model, tmp)
        os.replace(tmp, folder / MODEL_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name or folder.name,
        "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
        "thyronet_version": __version__,
        "versions": _versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "threshold": None if threshold is None else float(threshold),
        "files": {MODEL_FILE: {"sha256": _sha256(folder / MODEL_FILE),
                               "bytes": (folder / MODEL_FILE).stat().st_size}},
        "metadata": _jsonable(metadata or {}),
    }
    tmp_info = folder / (INFO_FILE + ".tmp")
    tmp_info.write_text(json.dumps(info, indent=2, allow_nan=False))
    os.replace(tmp_info, info_path)
    return folder


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
        raise ModelFileError(f"model folder {str(folder)!r} does not exist (a saved model is "
                             f"a folder holding {INFO_FILE} and {MODEL_FILE})")
    info_path = folder / INFO_FILE
    if not info_path.is_file():
        raise ModelFileError(f"{str(folder)!r} is not a finished thyronet model: {INFO_FILE} "
                             "is missing (the save was interrupted, or this is another folder)")
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"cannot read {info_path}: {err}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ModelFileError(f"{info_path} is not thyronet model metadata "
                             f"(expected format {FORMAT!r})")
    if info.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{info_path} has model format version {info.get('format_version')!r}; this "
            f"thyronet ({__version__}) reads version {FORMAT_VERSION}")
    saved = str(info.get("thyronet_version", "?"))
    if _release(saved) != _release(__version__):
        raise ModelFileError(
            f"model {str(folder)!r} was saved by thyronet {saved}, which is incompatible with "
            f"the installed thyronet {__version__} (models load only within the same "
            f"major.minor release); refit it, or install thyronet {saved}")
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
    target = folder / MODEL_FILE
    if not target.is_file():
        raise ModelFileError(f"{target} is missing")
    expected = files[MODEL_FILE].get("sha256")
    actual = _sha256(target)
    if actual != expected:
        raise ModelFileError(
            f"{target} does not match the SHA-256 recorded in {INFO_FILE} (expected "
            f"{str(expected)[:12]}..., got {actual[:12]}...): the file was modified, corrupted "
            "or replaced after saving; refusing to load it")
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
    import joblib

    info = verify_model(path)
    try:
        model = joblib.load(Path(path) / MODEL_FILE)
    except Exception as err:
        raise ModelFileError(f"cannot load {Path(path) / MODEL_FILE}: "
                             f"{type(err).__name__}: {err}") from err
    return model, info
