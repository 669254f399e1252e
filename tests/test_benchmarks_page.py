"""``docs/benchmarks.md`` is generated from the benchmark results and dates every run."""

from __future__ import annotations

import json
import re

from benchmarks.__main__ import PAGE, RESULTS, render, scripts


def _results() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}


def test_every_benchmark_script_has_dated_results():
    results = _results()
    cpu_results = sorted(name for name in results if not name.startswith("gpu_"))
    stems = sorted(script.stem for script in scripts())
    # one result per script, plus named variants of a script's run (<script>_<variant>)
    assert set(stems) <= set(cpu_results)
    for name in set(cpu_results) - set(stems):
        assert any(name.startswith(f"{stem}_") for stem in stems), name
    for name, data in results.items():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", data.get("date", "")), name
        if not name.startswith("gpu_"):
            assert "cores" in data.get("machine", ""), name


def test_the_page_groups_results_by_machine_kind():
    results = {
        "bench_a": {"date": "d", "machine": "m1", "machine_kind": "Zen 4, 2 cores"},
        "bench_b": {"date": "d", "machine": "m2", "machine_kind": "Xeon, 2 cores", "x": 1},
        "bench_c": {"date": "d", "machine": "m1", "machine_kind": "Zen 4, 2 cores"},
    }
    page = render(results)
    assert page.index("## Xeon, 2 cores") < page.index("### bench_b")
    assert page.index("## Zen 4, 2 cores") < page.index("### bench_a") < page.index("### bench_c")
    assert page.count("## Zen 4") == 1 and "| `x` | 1 |" in page


def test_the_page_is_up_to_date_with_the_results():
    assert PAGE.read_text() == render(_results()), (
        "docs/benchmarks.md is stale: run `python -m benchmarks --report-only`"
    )
    assert "Run ? on ?" not in PAGE.read_text()
