#!/usr/bin/env python3
"""An independent NumPy reference of RWKV-7 and RWKV-4: the published equations, in float64,
one token at a time (the recurrent form). docs/equations.md is the specification.

    python3 rwkv_reference.py --model M.safetensors --tokens 1,2,3 --out DIR [--state-in SDIR]

writes DIR/logits.npy (float64 [T, V], every position) and DIR/state/<slot>.npy (float64, one
file per state slot). --state-in starts from a state written so: SDIR is an earlier --out
directory or its state/ folder; without it the state is fresh.

As a module: load_safetensors(path) -> (weights, metadata); run(weights, tokens, state=None) ->
(logits [T, V], state {slot: array}).
"""
import argparse
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

import rwkv4
import rwkv7
from safetensors_io import SafetensorsError, read_safetensors

VERSIONS = {"rwkv7": rwkv7, "rwkv4": rwkv4}


class ModelError(ValueError):
    """A checkpoint, state or token sequence the reference cannot run."""


@dataclass(frozen=True)
class Config:
    version: str  # "rwkv7" or "rwkv4"
    layers: int
    embd: int  # C
    vocab: int  # V
    ffn: int  # F, the channel-mix width
    heads: int = 0  # H, RWKV-7 only
    head_size: int = 0  # N, RWKV-7 only


def load_safetensors(path):
    """({tensor name: float64 array in its stored shape}, metadata) of a .safetensors file."""
    return read_safetensors(path)


def _matrix(weights, name):
    tensor = weights.get(name)
    if tensor is None:
        raise ModelError(f"missing tensor {name}")
    if tensor.ndim != 2:
        raise ModelError(f"tensor {name} has shape {list(tensor.shape)}, expected a matrix")
    return tensor.shape


def detect_config(weights):
    """The version from the tensor names, the sizes from the shapes."""
    if "blocks.0.att.x_r" in weights:
        version = "rwkv7"
    elif "blocks.0.att.time_first" in weights:
        version = "rwkv4"
    else:
        raise ModelError("unknown model version: neither blocks.0.att.x_r (RWKV-7) nor "
                         "blocks.0.att.time_first (RWKV-4) is present")
    vocab, embd = _matrix(weights, "emb.weight")
    layers = 1 + max(int(m.group(1)) for m in map(re.compile(r"blocks\.(\d+)\.").match, weights) if m)
    ffn = _matrix(weights, "blocks.0.ffn.key.weight")[0]
    if version == "rwkv4":
        return Config(version, layers, embd, vocab, ffn)
    heads, head_size = _matrix(weights, "blocks.0.att.r_k")
    if heads * head_size != embd:
        raise ModelError(f"blocks.0.att.r_k is [{heads}, {head_size}] but the embedding width is {embd}")
    return Config(version, layers, embd, vocab, ffn, heads, head_size)


def select_weights(cfg, weights):
    """The tensors the equations read, checked against their shapes; [1, 1, C] vectors become [C]."""
    selected = {}
    for name, shape in VERSIONS[cfg.version].tensor_shapes(cfg, weights).items():
        tensor = weights.get(name)
        if tensor is None:
            raise ModelError(f"missing tensor {name}")
        vector_fits = len(shape) == 1 and tensor.size == shape[0]
        if tuple(tensor.shape) != shape and not vector_fits:
            want = ["D" if d is None else d for d in shape]
            raise ModelError(f"tensor {name} has shape {list(tensor.shape)}, expected {want}")
        selected[name] = tensor.reshape(shape)
    return selected


def fresh_state(cfg):
    return {name: np.full(shape, init) for name, shape, init in VERSIONS[cfg.version].state_slots(cfg)}


def checked_state(cfg, state):
    """A float64 copy of `state`, every slot present with the right number of values."""
    copy = {}
    for name, shape, _ in VERSIONS[cfg.version].state_slots(cfg):
        if name not in state:
            raise ModelError(f"state slot {name} is missing")
        values = np.asarray(state[name], dtype=np.float64)
        if values.size != int(np.prod(shape)):
            raise ModelError(f"state slot {name} has shape {list(values.shape)}, expected {list(shape)}")
        copy[name] = values.reshape(shape).copy()
    return copy


def run(weights, tokens, state=None):
    """Logits of every position [T, V] and the state after the last token."""
    cfg = detect_config(weights)
    selected = select_weights(cfg, weights)
    state = fresh_state(cfg) if state is None else checked_state(cfg, state)
    for t, token in enumerate(tokens):
        if not 0 <= token < cfg.vocab:
            raise ModelError(f"token {token} at position {t} is out of range: the vocabulary is 0..{cfg.vocab - 1}")
    logits = np.empty((len(tokens), cfg.vocab))
    for t, token in enumerate(tokens):
        logits[t] = VERSIONS[cfg.version].forward_token(cfg, selected, token, state)
    return logits, state


def read_state_dir(cfg, path):
    folder = os.path.join(path, "state") if os.path.isdir(os.path.join(path, "state")) else path
    if not os.path.isdir(folder):
        raise ModelError(f"state directory {path} does not exist")
    state = {}
    for name, _, _ in VERSIONS[cfg.version].state_slots(cfg):
        file = os.path.join(folder, name + ".npy")
        if not os.path.isfile(file):
            raise ModelError(f"state slot {name}: {file} does not exist")
        try:
            state[name] = np.load(file)
        except ValueError as e:
            raise ModelError(f"state slot {name}: {file} is not a readable .npy file ({e})") from None
    return checked_state(cfg, state)


def write_outputs(path, logits, state):
    os.makedirs(os.path.join(path, "state"), exist_ok=True)
    np.save(os.path.join(path, "logits.npy"), logits)
    for name, values in state.items():
        np.save(os.path.join(path, "state", name + ".npy"), values)


def parse_tokens(text):
    try:
        tokens = [int(t) for t in text.split(",")]
    except ValueError:
        raise ModelError(f"--tokens {text!r} is not a comma-separated list of integers") from None
    return tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a .safetensors checkpoint (RWKV-7 or RWKV-4)")
    parser.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 1,2,3")
    parser.add_argument("--out", required=True, help="directory for logits.npy and state/<slot>.npy")
    parser.add_argument("--state-in", help="an earlier --out directory (or its state/) to start from")
    args = parser.parse_args(argv)
    try:
        tokens = parse_tokens(args.tokens)
        weights, _ = load_safetensors(args.model)
        cfg = detect_config(weights)
        state = read_state_dir(cfg, args.state_in) if args.state_in else None
        logits, state = run(weights, tokens, state)
        write_outputs(args.out, logits, state)
    except (ModelError, SafetensorsError) as e:
        print(f"rwkv_reference.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"rwkv_reference.py: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
