"""``docs/benchmarks.md`` is generated from the benchmark results and dates every run."""

from __future__ import annotations

import json
import re

from benchmarks.__main__ import PAGE, RESULTS, render, scripts


def _results() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}


def test_every_benchmark_script_has_dated_results():
    results = _results()
    assert sorted(results) == sorted(script.stem for script in scripts())
    for name, data in results.items():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", data.get("date", "")), name
        assert "cores" in data.get("machine", ""), name


def test_the_page_is_up_to_date_with_the_results():
    assert PAGE.read_text() == render(_results()), (
        "docs/benchmarks.md is stale: run `python -m benchmarks --report-only`"
    )
    assert "Run ? on ?" not in PAGE.read_text()
