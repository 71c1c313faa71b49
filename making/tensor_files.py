"""safetensors files read and written one tensor at a time, for `import-checkpoint`.

Reading: a checkpoint's tensor names, shapes and dtypes come from the files' headers
alone (no weights loaded), so the whole output can be planned, and bad input refused,
before a byte is written. Writing: safetensors has no streaming writer (save_file
serialises the whole dict in memory), but its format is a JSON header then raw bytes,
and the header needs only the shapes the plan already has. So each tensor goes to
disk as soon as it is converted, and memory holds one tensor, not a shard.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

from .documents import InputError

INDEX = "model.safetensors.index.json"
_HEADER_LIMIT = 100 << 20  # a header larger than this is not a checkpoint's
DTYPE_CODES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
ITEM_BYTES = {
    "F32": 4,
    "BF16": 2,
    "F16": 2,
    "F64": 8,
    "I64": 8,
    "I32": 4,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


class TensorFileError(InputError):
    """A weights file that cannot be read; the message names it."""


@dataclass(frozen=True)
class TensorInfo:
    file: Path
    dtype: str  # safetensors code: F32, BF16, ...
    shape: tuple[int, ...]


def read_header(path: Path) -> dict:
    """The JSON header of one safetensors file, without reading its weights."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            size = struct.unpack("<Q", raw)[0] if len(raw) == 8 else -1
            if not 0 < size <= _HEADER_LIMIT:
                raise TensorFileError(f"{path} is not a safetensors file")
            header = json.loads(f.read(size))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TensorFileError(f"{path} is not a safetensors file (bad header)") from None
    header.pop("__metadata__", None)
    return header


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder: its index's, or every one."""
    index = folder / INDEX
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise TensorFileError(f"{index} is not a weight index (no weight_map)") from None
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise TensorFileError(f"{index} lists {missing[0]}, which is not in {folder}")
        return [folder / n for n in names]
    return sorted(folder.glob("*.safetensors"))


def tensors_of(files: list[Path]) -> dict[str, TensorInfo]:
    """Every tensor's name -> where it is, its dtype and shape (headers only)."""
    out: dict[str, TensorInfo] = {}
    for path in files:
        for name, meta in read_header(path).items():
            out[name] = TensorInfo(path, meta["dtype"], tuple(meta["shape"]))
    return out


def sha256_file(path: Path, chunk: int = 16 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class ShardWriter:
    """Writes planned tensors, in plan order, into shards of at most `max_bytes`
    (one tensor larger than that gets a shard of its own). `plan` is a list of
    (name, shape); every tensor is written as `dtype` ('bfloat16', ...)."""

    def __init__(
        self, folder: Path, plan: list[tuple[str, tuple[int, ...]]], dtype: str, max_bytes: int
    ):
        self.folder, self.code = folder, DTYPE_CODES[dtype]
        item = ITEM_BYTES[self.code]
        shards: list[list[tuple[str, tuple[int, ...], int]]] = [[]]
        used = 0
        for name, shape in plan:
            nbytes = item
            for dim in shape:
                nbytes *= dim
            if shards[-1] and used + nbytes > max_bytes:
                shards.append([])
                used = 0
            shards[-1].append((name, tuple(shape), nbytes))
            used += nbytes
        n = len(shards)
        self.names = (
            ["model.safetensors"]
            if n == 1
            else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        )
        self.shards = shards
        self.total_bytes = sum(b for s in shards for *_, b in s)
        self.sha256: dict[str, str] = {}
        self._order = [(i, name, shape) for i, s in enumerate(shards) for name, shape, _ in s]
        self._next = 0
        self._file = None
        self._shard = -1
        self._hash = None

    def weight_map(self) -> dict[str, str]:
        return {name: self.names[i] for i, name, _ in self._order}

    def write(self, name: str, tensor) -> None:
        import torch

        shard, want, shape = self._order[self._next]
        if (name, tuple(tensor.shape)) != (want, shape):
            raise RuntimeError(f"wrote {name} {tuple(tensor.shape)}, planned {want} {shape}")
        if shard != self._shard:
            self._open(shard)
        data = tensor.contiguous().reshape(-1).view(torch.uint8).numpy().data
        self._file.write(data)
        self._hash.update(data)
        self._next += 1
        if self._next == len(self._order) or self._order[self._next][0] != shard:
            self._close()

    def _open(self, shard: int) -> None:
        self._close()
        header: dict = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape, nbytes in self.shards[shard]:
            header[name] = {
                "dtype": self.code,
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors does
        self._shard = shard
        self._file = open(self.folder / self.names[shard], "wb")
        self._hash = hashlib.sha256()
        for part in (struct.pack("<Q", len(raw)), raw):
            self._file.write(part)
            self._hash.update(part)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()  # a full disk can surface here too: the caller cleans up
            self.sha256[self.names[self._shard]] = self._hash.hexdigest()
            self._file = None

    def finish(self) -> None:
        if self._next != len(self._order):
            raise RuntimeError(f"{len(self._order) - self._next} planned tensors not written")
        self._close()
        if len(self.names) > 1:
            index = {"metadata": {"total_size": self.total_bytes}, "weight_map": self.weight_map()}
            (self.folder / INDEX).write_text(json.dumps(index, indent=2) + "\n")

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
