"""Read a PyTorch legacy-format `.pth` state dict into numpy arrays without torch, refusing any non-tensor class."""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from contract.errors import AgrilandError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _TensorRef:
    """A tensor not yet materialised: which storage, where in it, and its shape/strides (in elements)."""

    key: str
    dtype: np.dtype
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: tuple[str, np.dtype], offset: int, size: tuple, stride: tuple, *_: object
) -> _TensorRef:
    key, dtype = storage
    return _TensorRef(key, dtype, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows exactly what a state dict of tensors needs; anything else is refused before it runs."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise AgrilandError(f"refusing to load {module}.{name} from a weights file: only tensors are allowed")

    def persistent_load(self, pid: object) -> tuple[str, np.dtype]:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise AgrilandError(f"unexpected persistent id in weights file: {pid!r}")
        return str(pid[2]), STORAGE_DTYPES[pid[1].name]


def _load(handle: BinaryIO) -> object:
    return _RestrictedUnpickler(handle).load()


def read_legacy_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """Parameter name -> numpy array for a `.pth` written by `torch.save(..., _use_new_zipfile_serialization=False)`."""
    path = Path(path)
    if not path.is_file():
        raise AgrilandError(f"weights file not found: {path}")
    with open(path, "rb") as handle:
        if handle.read(2) == b"PK":
            raise AgrilandError(f"{path} is a zip-format .pth; only PyTorch's legacy format is supported")
        handle.seek(0)
        try:
            if _load(handle) != LEGACY_MAGIC:
                raise AgrilandError(f"{path} is not a PyTorch legacy weights file (bad magic number)")
            if _load(handle) != LEGACY_PROTOCOL:
                raise AgrilandError(f"{path}: unsupported PyTorch protocol version")
            sys_info = _load(handle)
            if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
                raise AgrilandError(f"{path}: big-endian weights are not supported")
            state = _load(handle)
            keys = _load(handle)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
            raise AgrilandError(f"{path} is not a readable PyTorch weights file: {err}") from err
        if not isinstance(state, dict) or not isinstance(keys, list):
            raise AgrilandError(f"{path} does not hold a state dict")
        storages = _read_storages(handle, keys, state, path)
    return {name: _materialise(ref, storages) for name, ref in state.items() if isinstance(ref, _TensorRef)}


def _read_storages(handle: BinaryIO, keys: list[str], state: dict, path: Path) -> dict[str, np.ndarray]:
    dtypes = {ref.key: ref.dtype for ref in state.values() if isinstance(ref, _TensorRef)}
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        count_bytes = handle.read(8)
        if len(count_bytes) != 8:
            raise AgrilandError(f"{path} is truncated (storage {key})")
        count = int(np.frombuffer(count_bytes, "<i8")[0])
        dtype = dtypes.get(str(key), np.dtype("<f4"))
        raw = handle.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise AgrilandError(f"{path} is truncated (storage {key})")
        storages[str(key)] = np.frombuffer(raw, dtype)
    return storages


def _materialise(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[ref.key]
    if not ref.shape:
        return np.array(flat[ref.offset], dtype=ref.dtype)
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.shape, strides=[s * ref.dtype.itemsize for s in ref.stride]
    )
    return np.array(view, dtype=ref.dtype.newbyteorder("="))
