"""The documentation's Python examples: each one says whether the docs build runs it.

``mkdocs build`` (``tox -e docs``, run by ``.ci/run``) executes every
```` ```python exec="on" ```` block through markdown-exec and fails on any error.
A block that cannot run at build time (it needs a GPU, a cluster, downloaded data,
or is a fragment of a plugin package) is marked ``exec="off"``; an unmarked block
would silently go unchecked, so this test refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```python(?P<options>[^\n]*)$", re.M)
EXEC = re.compile(r'\bexec="(?P<value>on|off)"')


def python_fences(page: Path) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group("options")) for m in FENCE.finditer(text)]


PAGES = sorted(DOCS.rglob("*.md"))


def test_the_docs_are_there():
    assert len(PAGES) >= 15
    assert (DOCS.parent / "mkdocs.yml").read_text().count("markdown-exec") == 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_python_example_says_whether_the_build_runs_it(page):
    unmarked = [line for line, options in python_fences(page) if not EXEC.search(options)]
    assert not unmarked, (
        f"{page.relative_to(DOCS.parent)}: ```python blocks at lines "
        f'{unmarked} need exec="on" (run by the docs build) or '
        f'exec="off" (cannot run at build time)'
    )


def test_most_examples_run():
    states = [
        EXEC.search(options).group("value")
        for page in PAGES
        for _, options in python_fences(page)
        if EXEC.search(options)
    ]
    assert states.count("on") >= 25
    assert states.count("on") > states.count("off")


def test_getting_started_shows_the_readme_commands():
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart:start -->\s*```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    for command in commands:
        assert command in home, f"docs/index.md lacks the README command: {command}"


def test_readme_says_how_long_each_quick_start_command_takes():
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    intro = readme.split("## Quick start", 1)[1].split("<!-- quickstart:start -->", 1)[0]
    intro = " ".join(intro.split())
    first, second = intro.split("The second", 1)
    assert re.search(r"about [\d.]+ minutes", first)
    assert "about 5 minutes" in second and "slow" in second
