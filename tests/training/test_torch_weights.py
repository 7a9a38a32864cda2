"""The torch-free .pth reader: round trip of a legacy-format state dict, refusal of anything but tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contract.errors import AgrilandError
from testkit.legacy_pth import write_legacy_pth
from training.torch_weights import read_legacy_state_dict


def _write(path: Path, evil: bool = False) -> Path:
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    b = np.array([1.5, -2.0], np.float32)
    return write_legacy_pth({"conv.weight": w, "conv.bias": b}, path, evil)


def test_reads_tensors_of_a_legacy_file(tmp_path: Path) -> None:
    state = read_legacy_state_dict(_write(tmp_path / "w.pth"))
    assert list(state) == ["conv.weight", "conv.bias"]
    np.testing.assert_array_equal(state["conv.weight"], np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    np.testing.assert_array_equal(state["conv.bias"], [1.5, -2.0])


def test_refuses_a_pickle_that_asks_for_anything_but_tensors(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match=r"refusing to load (posix|os|nt)\.system"):
        read_legacy_state_dict(_write(tmp_path / "evil.pth", evil=True))


def test_truncated_missing_and_foreign_files(tmp_path: Path) -> None:
    good = _write(tmp_path / "w.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(good[:-10])
    with pytest.raises(AgrilandError, match="truncated"):
        read_legacy_state_dict(tmp_path / "cut.pth")
    with pytest.raises(AgrilandError, match="not found"):
        read_legacy_state_dict(tmp_path / "nothing.pth")
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(AgrilandError, match="zip-format"):
        read_legacy_state_dict(tmp_path / "zip.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x80\x02K\x07.")
    with pytest.raises(AgrilandError, match="bad magic"):
        read_legacy_state_dict(tmp_path / "junk.pth")
