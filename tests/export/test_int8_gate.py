"""The int8 gate: the figures the docs state (mask IoU 0.98, cluster agreement 0.97) on >= 64 tiles, recorded."""

from __future__ import annotations

import numpy as np
import pytest

from export.parity import MIN_GATE_TILES, TOLERANCES, ParityError, judge


def figures(**values: float) -> dict[str, float]:
    return {"max_abs_diff_mask": 0.1, "scale_mask": 1.0, **values}


def test_the_gate_is_what_the_docs_state() -> None:
    assert MIN_GATE_TILES >= 64
    assert TOLERANCES["int8"].min_mask_iou == 0.98 and TOLERANCES["int8"].min_cluster_agreement == 0.97


def test_an_int8_at_0_96_is_dropped_and_says_what_it_measured() -> None:
    with pytest.raises(ParityError) as missed:
        judge(figures(mask_iou=0.96), "int8", 64, split="held-out tiles from --parity-data")
    gate = missed.value.parity.gate
    assert "mask IoU >= 0.98" in gate and "measured mask IoU 0.9600 on 64 tiles" in gate and gate.endswith("missed")
    assert "held-out" in gate and missed.value.parity.passed is False


def test_too_few_tiles_cannot_pass() -> None:
    with pytest.raises(ParityError, match="only 16 parity tiles"):
        judge(figures(mask_iou=1.0), "int8", 16)
    parity = judge(figures(mask_iou=0.99), "int8", 64)
    assert parity.passed and parity.gate.endswith("passed") and "0.9900 on 64 tiles" in parity.gate


def test_dec_agreement_gate() -> None:
    q = {"max_abs_diff_q": 0.1, "scale_q": 1.0}
    with pytest.raises(ParityError, match="cluster agreement 0.9600 < 0.97"):
        judge({**q, "cluster_agreement": 0.96}, "int8", 100)
    assert judge({**q, "cluster_agreement": float(np.float32(0.975))}, "int8", 100).passed
