#!/usr/bin/env python3
"""Makes the PyTorch .pth fixtures in tests/models with PyTorch's own torch.save.

The weights come from the committed safetensors models, read with tests/reference/safetensors_io.py,
so each .pth holds exactly the same numbers (rounded by torch to f16 or bf16 where asked):

  rwkv7-tiny-f32.pth    rwkv7-tiny in f32, an OrderedDict with a state_dict's _metadata (pickled
                        with BUILD), saved to a buffer: its archive folder is "archive/"
  rwkv4-tiny-f16.pth    rwkv4-tiny in f16, a plain dict, saved to a path: torch 1.13 names the
                        archive folder after the file ("rwkv4-tiny-f16/"), as older releases show
  rwkv4-tiny-bf16.pth   rwkv4-tiny in bf16 with non-contiguous tensors: head.weight saved as the
                        transpose of a [C, V] tensor, every LayerNorm vector a slice of one storage
  strided.pth           small tensors with known values (see strided_tensors) covering transposes,
                        offsets, steps, permutes, shared storages, a scalar and an empty tensor
  strided-deflated.pth  strided.pth with every zip entry re-compressed with deflate

Run with Debian's python3-torch (torch 1.13), from anywhere:
    /usr/bin/python3 tests/models/make_pth_fixtures.py
"""
import collections
import io
import os
import sys
import tempfile
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from safetensors_io import read_safetensors  # noqa: E402


def load_f32(name):
    tensors, _ = read_safetensors(os.path.join(HERE, name))
    return {key: torch.from_numpy(values.astype(np.float32)) for key, values in sorted(tensors.items())}


def save_to_path(state, name):
    """torch.save to a file called `name`: torch 1.13 uses its stem as the archive folder."""
    torch.save(state, os.path.join(HERE, name))


def save_via_buffer(state, name):
    """torch.save to a buffer: the archive folder is "archive", as newer torch always writes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(buffer.getvalue())


def rwkv7_f32():
    state = collections.OrderedDict(load_f32("rwkv7-tiny.safetensors"))
    # What Module.state_dict() attaches; BUILD restores it when unpickling.
    state._metadata = collections.OrderedDict([("", {"version": 1}), ("blocks.0.att", {"version": 1})])
    return state


def rwkv4_f16():
    return {key: value.half() for key, value in load_f32("rwkv4-tiny.safetensors").items()}


def rwkv4_bf16_strided():
    weights = {key: value.bfloat16() for key, value in load_f32("rwkv4-tiny.safetensors").items()}
    # head.weight [V, C] as the transpose of a contiguous [C, V] tensor: strides (1, V).
    weights["head.weight"] = weights["head.weight"].t().contiguous().t()
    # Every LayerNorm vector a slice of one shared storage, each at its own offset.
    norms = [key for key in weights if ".ln" in key or key.startswith("ln_out")]
    shared = torch.cat([weights[key] for key in norms])
    offset = 0
    for key in norms:
        size = weights[key].numel()
        weights[key] = shared[offset:offset + size]
        offset += size
    return weights


def strided_tensors():
    """Values the tests recompute from these definitions: base[r][c] = 1 + 6r + c, and so on."""
    base = torch.arange(1, 25, dtype=torch.float32).reshape(4, 6)
    cube = torch.arange(1, 25, dtype=torch.float32).reshape(2, 3, 4)
    halves = (torch.arange(1, 13, dtype=torch.float32) / 4).half().reshape(3, 4)
    bf16 = (torch.arange(1, 9, dtype=torch.float32) * 0.5).bfloat16()
    return collections.OrderedDict([
        ("base", base),                            # [4, 6], contiguous
        ("transposed", base.t()),                  # [6, 4], strides (1, 6), base's storage
        ("rows", base[1:3]),                       # [2, 6], offset 6, contiguous
        ("columns", base[:, 2:5]),                 # [4, 3], offset 2, strides (6, 1)
        ("every_other", base[::2, ::3]),           # [2, 2], strides (12, 3)
        ("row_vector", base[2:3, 1:]),             # [1, 5], offset 13: contiguous despite stride 6
        ("cube_permuted", cube.permute(2, 0, 1)),  # [4, 2, 3], strides (1, 12, 4)
        ("half_transposed", halves.t()),           # f16 [4, 3], strides (1, 4)
        ("bf16_tail", bf16[3:]),                   # bf16 [5], offset 3
        ("scalar", torch.tensor(2.5)),             # [], one element
        ("empty", torch.zeros(0, 3)),              # [0, 3], no elements
    ])


def deflate_copy(source, target):
    """The same entries, in the same order, each compressed with deflate."""
    with zipfile.ZipFile(os.path.join(HERE, source)) as zin:
        with tempfile.NamedTemporaryFile(dir=HERE, delete=False) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
                for info in zin.infolist():
                    entry = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    zout.writestr(entry, zin.read(info.filename))
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, os.path.join(HERE, target))


def check_prefix(name, prefix):
    with zipfile.ZipFile(os.path.join(HERE, name)) as z:
        names = z.namelist()
    if f"{prefix}/data.pkl" not in names:
        raise SystemExit(f"{name}: expected {prefix}/data.pkl, found {names[:3]}: this torch names archives differently")


def main():
    torch.manual_seed(0)
    save_via_buffer(rwkv7_f32(), "rwkv7-tiny-f32.pth")
    save_to_path(rwkv4_f16(), "rwkv4-tiny-f16.pth")
    save_to_path(rwkv4_bf16_strided(), "rwkv4-tiny-bf16.pth")
    save_to_path(strided_tensors(), "strided.pth")
    deflate_copy("strided.pth", "strided-deflated.pth")
    check_prefix("rwkv7-tiny-f32.pth", "archive")
    check_prefix("rwkv4-tiny-f16.pth", "rwkv4-tiny-f16")
    check_prefix("strided.pth", "strided")
    for name in ["rwkv7-tiny-f32.pth", "rwkv4-tiny-f16.pth", "rwkv4-tiny-bf16.pth", "strided.pth",
                 "strided-deflated.pth"]:
        print(f"{name}: {os.path.getsize(os.path.join(HERE, name))} bytes")


if __name__ == "__main__":
    main()
