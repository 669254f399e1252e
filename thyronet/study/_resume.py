"""Resuming a study: fingerprints of what a model was fitted on, and reuse of saved models.

A finished model in ``out_dir/models/<name>/`` is loaded instead of refitted when
its file is intact and its fingerprint (the settings that change the models, the
training data, a user-given model, and for the combined model DL_F's file) is the
current one. A model from another configuration or cohort is an error, never
silently replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thyronet.model_io import ModelFileError, verify_model
from thyronet.schema import CLINICAL_COLUMNS, COHORT_COLUMN, ID_COLUMN, LABEL_COLUMN, VIEW_COLUMNS
from thyronet.study._config import StudyConfig, StudyError


def _data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of what the models are fitted on (train and validation rows).

    Covers the clinical columns, the labels, each image's path *and bytes*, and the
    ROI strings: replacing an image file at the same path changes the fingerprint.
    """
    digest = hashlib.sha256()
    used = frame[frame[COHORT_COLUMN].isin(["train", "validation"])]
    columns = [ID_COLUMN, COHORT_COLUMN, LABEL_COLUMN, *CLINICAL_COLUMNS]
    digest.update(
        pd.util.hash_pandas_object(used[columns].astype(str), index=False).to_numpy().tobytes()
    )
    for view in VIEW_COLUMNS:
        for value in used[view]:
            if isinstance(value, np.ndarray):
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(str(value).encode())
                if isinstance(value, (str, os.PathLike)):  # the bytes, not only the path
                    digest.update(_file_digest(Path(value)).encode())
        roi = f"{view}_roi"
        if roi in used.columns:
            digest.update(str(list(used[roi])).encode())
    return digest.hexdigest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes; size and modification time first, to skip re-reading."""
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]


def _model_fingerprint(
    name: str, config: StudyConfig, data_print: str, override: Any, dl_f_digest: str | None
) -> dict[str, Any]:
    """What model ``name`` is fitted from, as stored in its ``model.json`` (JSON values)."""
    fingerprint = {
        "model": name,
        "config": config.fingerprint(),
        "data": data_print,
        "override": _describe(override),
    }
    if name == "combined":
        fingerprint["dl_f"] = dl_f_digest
    return _json_roundtrip(fingerprint)


def _describe(override) -> str | None:
    """A stable description of a user-given model (for the resume fingerprint)."""
    if override is None:
        return None
    if hasattr(override, "fit"):
        return repr(override)
    return f"{getattr(override, '__module__', '?')}.{getattr(override, '__qualname__', '?')}"


def _json_roundtrip(value):
    return json.loads(json.dumps(value, default=str))


def _saved_model(folder: Path, fingerprint: dict[str, Any], name: str) -> tuple[bool, str | None]:
    """Whether the finished model in ``folder`` can be loaded, and why not when it cannot.

    Returns ``(True, None)`` to load it, ``(False, reason)`` to refit it (no model
    saved: ``reason`` is ``None``; a damaged file or a changed DL_F: a message).

    Raises
    ------
    StudyError
        The saved model was fitted with another configuration or cohort.
    """
    if not (folder / "model.json").exists():
        return False, None
    try:
        info = verify_model(folder)
    except ModelFileError as err:
        return False, f"{name}: the saved model is not usable ({err}); refitting"
    saved = info.get("metadata", {}).get("fingerprint")
    if saved == fingerprint:
        return True, None
    if isinstance(saved, dict) and saved.get("dl_f") != fingerprint.get("dl_f"):
        if _without_dl_f(saved) == _without_dl_f(fingerprint):
            return False, f"{name}: DL_F was refitted, so its features changed; refitting"
    if isinstance(saved, dict) and saved.get("data") != fingerprint.get("data"):
        raise StudyError(
            f"{folder} holds a finished {name} model fitted on other data (the training or "
            "validation patients, their images or ROIs changed): data differs: use "
            "--no-resume (resume=False) or a new --out"
        )
    raise StudyError(
        f"{folder} holds a finished {name} model fitted with another configuration or "
        f"cohort ({_differences(saved, fingerprint)}); use another output folder, or "
        "resume=False (--no-resume) to refit and replace it"
    )


def _without_dl_f(fingerprint: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fingerprint.items() if k != "dl_f"}


def _differences(saved, current) -> str:
    current = _json_roundtrip(current)
    if not isinstance(saved, dict):
        return "no fingerprint recorded"
    diffs = []
    for key in sorted(set(saved) | set(current)):
        if key == "config" and isinstance(saved.get(key), dict):
            a, b = saved[key], current.get(key, {})
            diffs += [
                f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)
            ]
        elif saved.get(key) != current.get(key):
            diffs.append(f"{key} differs")
    return "; ".join(diffs) or "unknown difference"
