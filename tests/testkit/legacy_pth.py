"""PyTorch legacy-format .pth files written without torch, for the tests of the torch-free weight reader."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

# Writes the arrays of an .npz (in its order) as a legacy-format state dict: stand-in `torch` modules in a child
# process make the pickles name `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage` exactly as torch.save
# does. With "evil", the state dict also holds an object whose unpickling would run a shell command.
_WRITER = textwrap.dedent("""
    import collections, pickle, sys, types
    import numpy as np
    torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
    class FloatStorage: pass
    FloatStorage.__module__ = "torch"; torch.FloatStorage = FloatStorage
    def _rebuild_tensor_v2(*args): pass
    _rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    class Tensor:
        def __init__(self, key, array): self.key, self.array = key, np.ascontiguousarray(array, "<f4")
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
    arrays = np.load(sys.argv[1])
    tensors = [(name, Tensor(str(i), arrays[name])) for i, name in enumerate(arrays.files)]
    state = collections.OrderedDict(tensors)
    if sys.argv[3] == "evil":
        state["payload"] = Evil()
    with open(sys.argv[2], "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        P(f, protocol=2).dump(state)
        pickle.dump([t.key for _, t in tensors], f, protocol=2)
        for _, t in tensors:
            f.write(np.int64(t.array.size).tobytes()); f.write(t.array.tobytes())
""")


def write_legacy_pth(arrays: dict[str, np.ndarray], path: Path, evil: bool = False) -> Path:
    """Write `arrays` (float32, in their order) to `path` as torch.save's legacy format would; returns `path`."""
    npz = path.with_suffix(".npz")
    np.savez(npz, **arrays)
    subprocess.run([sys.executable, "-c", _WRITER, str(npz), str(path), "evil" if evil else "ok"], check=True)
    npz.unlink()
    return path
