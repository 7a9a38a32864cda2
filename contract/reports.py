"""The one report writer: a Markdown section replaced between its markers (atomically), and the machine it ran on.

bench/ (speed) and evaluation/ (model quality) both write their figures into docs/ pages through it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from contract.atomic import write_text_atomic

DOCS = Path(__file__).resolve().parents[1] / "docs"
_VERSIONS = ("onnxruntime-gpu", "tensorflow", "tf-keras", "bentoml", "locust", "numpy")
_ISA = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"}


def replace_section(path: Path, begin: str, end: str, section: str, append: bool = True) -> None:
    """Write `section` (which starts with `begin` and ends with `end`) between those markers of `path`, keeping the
    rest of the page; a page without the markers gets it appended (or, with `append=False`, put first)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
    elif append:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        text = section + ("\n" + text if text else "")
    write_text_atomic(path, text)


def machine_info() -> dict[str, object]:
    """CPU model, cores, RAM, ISA flags that matter (VNNI, bf16), load average, date and library versions."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lscpu.splitlines())}
    flags = set(fields.get("Flags", "").split())
    with open("/proc/meminfo", encoding="utf-8") as handle:
        mem_kb = int(next(line.split()[1] for line in handle if line.startswith("MemTotal")))
    versions = {}
    for package in _VERSIONS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cpu_model": fields.get("Model name", platform.processor()),
        "cores": len(os.sched_getaffinity(0)),
        "threads_per_core": fields.get("Thread(s) per core"),
        "ram_gb": round(mem_kb / 1024**2, 1),
        "isa": sorted(f for f in flags if f in _ISA),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "versions": versions,
        "gpu": "none (no GPU was lent to this task; fp16/CUDA figures not measurable)",
    }
