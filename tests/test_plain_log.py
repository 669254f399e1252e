"""A log that is not a terminal gets no ANSI escapes and no progress-bar redraws."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from thyronet.cnn._training import print_epoch_row

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from _images import make_images, tiny_cnn
    from thyronet.datasets import make_ptmc_cohort
    from thyronet.fusion import DualChannelFuser

    cohort = make_ptmc_cohort(n_patients=6, image_size=32, random_state=0)
    DualChannelFuser(image_size=32, verbose=1).fit_transform(cohort)
    X, y = make_images(n=32, size=32)
    tiny_cnn(verbose=1, max_epochs=3, early_stopping=True, patience=5).fit(X, y)
    """
)


def test_a_run_piped_to_a_file_has_no_ansi_escapes_nor_bars():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "valid_auc" in run.stdout  # the epoch table is still printed ...
    assert "\x1b[" not in run.stdout and "\x1b[" not in run.stderr  # ... without colours
    assert "fusing views" not in run.stderr and "\r" not in run.stderr  # no bar redraws


def test_epoch_rows_keep_their_colours_on_a_terminal(monkeypatch, capsys):
    row = "      1  \x1b[36m0.6000\x1b[0m  0.1"
    print_epoch_row(row)
    assert capsys.readouterr().out == "      1  0.6000  0.1\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    print_epoch_row(row)
    assert terminal.getvalue() == row + "\n"
