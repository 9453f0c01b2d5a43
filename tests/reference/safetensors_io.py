"""Reading and writing .safetensors files with NumPy alone.

The format: an 8-byte little-endian u64 header length N, then N bytes of JSON mapping each tensor
name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the start of the
data section), plus an optional "__metadata__" object of string pairs, then the data section.
Tensors are stored row-major, little-endian.
"""
import json
import math
import struct

import numpy as np

# Storage dtype of each supported safetensors dtype. BF16 is read as raw bits (numpy has no
# bfloat16) and widened: a bfloat16 is the top half of the float32 with the same value.
_STORAGE = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


class SafetensorsError(ValueError):
    """A file that is not a well-formed safetensors file of a supported dtype."""


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(values):
    """Rounds float32 values to the nearest bfloat16 (ties to even) and returns its bits."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise SafetensorsError("bfloat16 encoding supports finite values only")
    bits = values.view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def read_safetensors(path):
    """Returns ({name: float64 array in its stored shape}, metadata dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: {len(blob)} bytes is too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise SafetensorsError(f"{path}: header length {header_len} runs past the end of the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")

    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(blob)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        tensors[name] = _decode_tensor(path, name, info, data)
    return tensors, metadata


def _decode_tensor(path, name, info, data):
    where = f"{path}: tensor {name}"
    if not isinstance(info, dict):
        raise SafetensorsError(f"{where}: entry is not a JSON object")
    dtype = info.get("dtype")
    if dtype not in _STORAGE:
        raise SafetensorsError(f"{where}: unsupported dtype {dtype!r} (supported: F32, F16, BF16)")
    shape = info.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise SafetensorsError(f"{where}: bad shape {shape!r}")
    offsets = info.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets):
        raise SafetensorsError(f"{where}: bad data_offsets {offsets!r}")
    begin, end = offsets
    storage = _STORAGE[dtype]
    expected = math.prod(shape) * storage.itemsize
    if not 0 <= begin <= end <= len(data) or end - begin != expected:
        raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] do not hold {dtype} {shape} "
                               f"({expected} bytes) inside the {len(data)}-byte data section")
    raw = np.frombuffer(data[begin:end], dtype=storage)
    values = bf16_bits_to_f32(raw) if dtype == "BF16" else raw
    return values.astype(np.float64).reshape(shape)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Writes {name: array} with every tensor stored as `dtype` (F32, F16 or BF16), rounding to it."""
    if dtype not in _STORAGE:
        raise SafetensorsError(f"unsupported dtype {dtype!r} (supported: F32, F16, BF16)")
    header = {}
    chunks = []
    offset = 0
    for name, values in tensors.items():
        values = np.asarray(values)
        if dtype == "BF16":
            payload = f32_to_bf16_bits(values).astype("<u2").tobytes()
        else:
            payload = np.ascontiguousarray(values, dtype=_STORAGE[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(values.shape), "data_offsets": [offset, offset + len(payload)]}
        chunks.append(payload)
        offset += len(payload)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # keeps the data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for payload in chunks:
            f.write(payload)
