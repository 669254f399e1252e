"""What every benchmark result records about its run: the date and the machine.

Speed figures only mean something next to the machine they were measured on: the
fastest inference path of a CNN differs between an AMD Zen 4 and an Intel Xeon that
report the same CPU flags. :func:`run_info` records the CPU model and its relevant
instruction-set flags, the torch version and thread counts, and a ``machine_kind``
by which ``docs/benchmarks.md`` groups the results.

Every benchmark imports this module before torch, and this module imports
:mod:`thyronet`, so the benchmarks run with thyronet's OpenMP wait policy
(:mod:`thyronet._threads`) as a user's script that imports thyronet first does.
``USER_OMP_WAIT_POLICY`` keeps the value from before.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata

USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")

import thyronet  # noqa: E402, F401  (sets the OpenMP wait policy before torch loads)

# instruction sets that decide which precision/kernels run fast
_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty where unreadable)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        return {}
    return info


def cpu_info() -> dict:
    """``model``, ``vendor``, ``family``, ``model_number``, ``cores`` and ISA ``flags``.

    Examples
    --------
    >>> sorted(cpu_info())
    ['cores', 'family', 'flags', 'model', 'model_number', 'vendor']
    """
    info = _cpuinfo()
    flags = set(info.get("flags", info.get("Features", "")).split())
    return {
        "model": info.get("model name") or platform.processor() or platform.machine(),
        "vendor": info.get("vendor_id", ""),
        "family": info.get("cpu family", ""),
        "model_number": info.get("model", ""),
        "cores": os.cpu_count(),
        "flags": [f for f in _FLAGS if f in flags],
    }


def machine_kind(cpu: dict) -> str:
    """A short name of the CPU kind, e.g. ``"AMD EPYC (family 25, model 17), 2 cores"``."""
    ident = ""
    if cpu.get("family"):
        ident = f" (family {cpu['family']}, model {cpu['model_number']})"
    return f"{cpu['model']}{ident}, {cpu['cores']} cores"


def _torch_info() -> dict:
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return {"torch": None}
    out: dict = {"torch": version}
    torch = sys.modules.get("torch")  # thread counts only where the benchmark used torch
    if torch is not None:
        out["torch_threads"] = torch.get_num_threads()
        out["torch_interop_threads"] = torch.get_num_interop_threads()
    return out


def run_info() -> dict:
    """``date``, ``machine``, ``machine_kind``, ``cpu`` and the torch version/threads.

    Examples
    --------
    >>> info = run_info()
    >>> sorted(info)[:5]
    ['cpu', 'date', 'machine', 'machine_kind', 'omp_wait_policy']
    >>> "cores" in info["machine"]
    True
    """
    cpu = cpu_info()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {cpu['model']}, {os.cpu_count()} cores",
        "machine_kind": machine_kind(cpu),
        "cpu": cpu,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        **_torch_info(),
    }


def write_result(path, result: dict) -> None:
    """Write a benchmark's ``result`` as indented JSON to ``path`` (folders made) and say so."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
