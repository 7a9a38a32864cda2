"""What an export run left: whether a variant was published, or dropped by its parity gate for a recorded reason."""

from __future__ import annotations

import json
from pathlib import Path


def was_exported(models: Path, name: str, variant: str) -> bool:
    """True when `variant` of `name` was published; False when its gate dropped it, after checking that the drop is
    the gate's doing (an optional variant, a parity failure with its measured figures recorded)."""
    summary = json.loads((Path(models) / name / "export_summary.json").read_text(encoding="utf-8"))
    entry = summary["variants"].get(variant)
    if entry is None:  # not asked for by name (fp32 is exported first for every variant derived from it)
        assert variant == "fp32" or not (Path(models) / name / variant).exists(), (name, variant)
        return (Path(models) / name / variant / "manifest.json").is_file()
    if entry["status"] == "exported":
        assert (Path(models) / name / variant / "manifest.json").is_file()
        return True
    assert entry["status"] == "dropped" and variant in ("fp16", "int8"), entry
    assert "fails parity" in entry["reason"] and entry["parity"]["passed"] is False, entry
    assert not (Path(models) / name / variant).exists()
    return False
