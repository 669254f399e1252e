"""The package layout (issue L): short modules, one-way imports, no swallowed errors,
and fusing a cohort without loading torch. The checks live in ``tools/check_layout.py``
so anyone can run them without pytest."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_layout", ROOT / "tools" / "check_layout.py")
check_layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_layout)


def test_no_module_is_longer_than_the_limit():
    assert check_layout.long_modules() == []


def test_no_import_cycle_among_thyronet_modules():
    assert check_layout.import_cycles() == []


def test_no_broad_except_swallows_an_error():
    assert check_layout.swallowed_errors() == []


def _graph_of(sources: dict[str, str], tmp_path: Path, monkeypatch) -> list[list[str]]:
    for rel, text in sources.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.setattr(check_layout, "ROOT", tmp_path)
    monkeypatch.setattr(check_layout, "PACKAGE", tmp_path / "thyronet")
    return check_layout.import_cycles()


def test_cycle_check_sees_function_level_imports_but_not_type_checking(tmp_path, monkeypatch):
    cycles = _graph_of(
        {
            "thyronet/__init__.py": "",
            "thyronet/a.py": "from thyronet.b import x\n",
            "thyronet/b.py": "def f():\n    from thyronet import a\n",
            "thyronet/c.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from thyronet.d import y\n",
            "thyronet/d.py": "from thyronet.c import z\n",
        },
        tmp_path,
        monkeypatch,
    )
    assert cycles == [["thyronet.a", "thyronet.b"]]


def test_swallow_check_flags_only_handlers_that_do_not_reraise(tmp_path, monkeypatch):
    (tmp_path / "thyronet").mkdir()
    (tmp_path / "thyronet" / "m.py").write_text(
        "try:\n    pass\nexcept Exception:\n    x = 1\n"
        "try:\n    pass\nexcept Exception as e:\n    raise ValueError('x') from e\n"
        "try:\n    pass\nexcept:\n    pass\n"
        "try:\n    pass\nexcept OSError:\n    pass\n"
    )
    monkeypatch.setattr(check_layout, "ROOT", tmp_path)
    monkeypatch.setattr(check_layout, "PACKAGE", tmp_path / "thyronet")
    assert check_layout.swallowed_errors() == [
        "thyronet/m.py:3: except Exception without re-raising",
        "thyronet/m.py:11: except <bare> without re-raising",
    ]


def test_the_tool_runs_from_the_command_line():
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_layout.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("layout ok")


def test_fusing_a_cohort_loads_no_torch(tmp_path):
    """The fuser, the schema, the plugins and the built-in plugins stay torch-free."""
    code = textwrap.dedent(
        """
        import sys
        sys._thyronet_called_from_test = True  # installed plugins (which may use torch) stay out
        import numpy as np
        import pandas as pd
        from thyronet import DualChannelFuser
        from thyronet.plugins import get_registry
        rng = np.random.default_rng(0)
        X = pd.DataFrame({
            "longitudinal": [rng.random((20, 24)) for _ in range(3)],
            "transverse": [rng.random((22, 20)) for _ in range(3)],
        })
        out = DualChannelFuser(image_size=16).fit_transform(X)
        assert out.shape == (3, 2, 16, 16), out.shape
        assert "resnet101" in get_registry("backbones")
        assert "torch" not in sys.modules, "fusing a cohort imported torch"
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "module",
    ["thyronet", "thyronet.schema", "thyronet.plugins", "thyronet.hookspecs", "thyronet.fusion"],
)
def test_light_modules_do_not_import_torch(module):
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_layout_tool_module_docstring_is_the_contract():
    tree = ast.parse((ROOT / "tools" / "check_layout.py").read_text())
    assert "import cycle" in ast.get_docstring(tree)
