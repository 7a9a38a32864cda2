"""The torch-free .pth reader: round trip of a legacy-format state dict, refusal of anything but tensors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from contract.errors import AgrilandError
from training.torch_weights import read_legacy_state_dict

# Writes a file in PyTorch's legacy format without torch: stand-in `torch` modules in a child process make the
# pickles name `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage` exactly as torch.save does.
WRITER = textwrap.dedent('''
    import collections, pickle, sys, types
    import numpy as np
    torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
    class FloatStorage: pass
    FloatStorage.__module__ = "torch"; torch.FloatStorage = FloatStorage
    def _rebuild_tensor_v2(*args): pass
    _rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    class Tensor:
        def __init__(self, key, array): self.key, self.array = key, array
        def __reduce__(self):
            a = self.array
            return (_rebuild_tensor_v2, (("storage", self.key, a.size), 0, a.shape,
                                         tuple(s // a.itemsize for s in a.strides), False, collections.OrderedDict()))
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, tuple) and len(obj) == 3 and obj[0] == "storage":
                return ("storage", FloatStorage, obj[1], "cpu", obj[2], None)
            return None
    path, evil = sys.argv[1], sys.argv[2] == "evil"
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4); b = np.array([1.5, -2.0], np.float32)
    state = collections.OrderedDict([("conv.weight", Tensor("10", w)), ("conv.bias", Tensor("11", b))])
    if evil:
        state["payload"] = Evil()
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        P(f, protocol=2).dump(state)
        pickle.dump(["10", "11"], f, protocol=2)
        for a in (w, b):
            f.write(np.int64(a.size).tobytes()); f.write(a.astype("<f4").tobytes())
''')


def _write(path: Path, evil: bool = False) -> Path:
    subprocess.run([sys.executable, "-c", WRITER, str(path), "evil" if evil else "ok"], check=True)
    return path


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
