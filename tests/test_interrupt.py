"""Interrupting ``thyronet study``: exit 130/143, nothing half-trained kept, resume is exact."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

STUDY = [
    "study",
    "--demo",
    "--n-patients",
    "80",
    "--image-size",
    "48",
    "--set",
    "image_size=32",
    "--set",
    "max_epochs=3",
    "--set",
    "batch_size=16",
    "--set",
    "pca_components=6",
    "--set",
    "lasso_cv=3",
    "--set",
    "gradcam_patients=0",
    "--set",
    "shap_max_samples=0",
    "--set",
    'device="cpu"',
]


def _command(out) -> list[str]:
    return [sys.executable, "-m", "thyronet.cli", *STUDY, "--out", str(out)]


def _env() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}",
    }


def _interrupt_during_dl_l(out, signum) -> tuple[int, str]:
    """Start the study, send ``signum`` once DL_L's first epoch is logged; exit code, log."""
    proc = subprocess.Popen(
        _command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
    )
    log = []
    in_dl_l = False
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        log.append(line)
        in_dl_l = in_dl_l or "DL_L: fitting" in line
        if in_dl_l and re.match(r"^\s+1\s", line):  # skorch's row of epoch 1
            proc.send_signal(signum)
            break
        assert time.monotonic() < deadline, "".join(log)
    rest, _ = proc.communicate(timeout=120)
    return proc.returncode, "".join(log) + rest


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_during_training_keeps_nothing_and_the_rerun_resumes(
    tmp_path_factory, signum, code
):
    out = tmp_path_factory.mktemp("interrupted") / "run"
    returncode, log = _interrupt_during_dl_l(out, signum)
    assert returncode == code, log
    assert "interrupted" in log and "was not saved" in log, log
    models = out / "models"
    assert not (models / "dl_l").exists(), log
    leftovers = list(models.iterdir()) if models.exists() else []
    assert leftovers == [], leftovers  # no staging folder that looks finished either
    assert not (out / "metrics.json").exists()
    if signum != signal.SIGINT:
        return
    resumed = subprocess.run(
        [*_command(out), "-q"], capture_output=True, text=True, env=_env(), timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path_factory.mktemp("uninterrupted") / "run"
    whole = subprocess.run(
        [*_command(reference), "-q"], capture_output=True, text=True, env=_env(), timeout=900
    )
    assert whole.returncode == 0, whole.stderr
    got = json.loads((out / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert got == expected
