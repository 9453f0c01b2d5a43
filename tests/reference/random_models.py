"""Small random RWKV checkpoints for the reference's own tests, with values in the ranges real
models use (decays, mixes in (0, 1), norms near 1, nothing all-zero) so logits are non-degenerate.
Shapes follow the checkpoint tables of docs/equations.md, [1, 1, C] vectors included.
"""
import numpy as np

from safetensors_io import bf16_bits_to_f32, f32_to_bf16_bits


def _vector(rng, C, low, high):
    return rng.uniform(low, high, size=(1, 1, C))


def _matrix(rng, rows, cols, scale=1.0):
    return rng.standard_normal((rows, cols)) * scale / np.sqrt(cols)


def _common(rng, w, layers, C, V):
    w["emb.weight"] = rng.standard_normal((V, C))
    w["head.weight"] = _matrix(rng, V, C)
    for name in ["blocks.0.ln0", "ln_out"] + [f"blocks.{i}.{n}" for i in range(layers) for n in ("ln1", "ln2")]:
        w[name + ".weight"] = rng.uniform(0.7, 1.3, size=C)
        w[name + ".bias"] = rng.uniform(-0.2, 0.2, size=C)


def random_rwkv7(layers=2, embd=16, head_size=4, vocab=40, ffn=None, rank=4, seed=0):
    rng = np.random.default_rng(seed)
    C, H, N, F = embd, embd // head_size, head_size, ffn or 4 * embd
    w = {}
    _common(rng, w, layers, C, vocab)
    for i in range(layers):
        att, ffn_ = f"blocks.{i}.att.", f"blocks.{i}.ffn."
        for mix in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
            w[att + mix] = _vector(rng, C, 0.05, 0.95)
        w[att + "w0"] = _vector(rng, C, -6.0, -1.0)
        w[att + "a0"] = _vector(rng, C, -1.0, 1.0)
        loras = ("w", "a", "g") if i == 0 else ("w", "a", "v", "g")
        for lora in loras:
            w[f"{att}{lora}1"] = rng.standard_normal((C, rank)) * 0.3
            w[f"{att}{lora}2"] = rng.standard_normal((rank, C)) * 0.3
        if i > 0:
            w[att + "v0"] = _vector(rng, C, -1.0, 1.0)
        w[att + "k_k"] = _vector(rng, C, 0.5, 1.5)
        w[att + "k_a"] = _vector(rng, C, 0.5, 1.5)
        w[att + "r_k"] = rng.uniform(-0.5, 0.5, size=(H, N))
        for proj in ("receptance", "key", "value", "output"):
            w[f"{att}{proj}.weight"] = _matrix(rng, C, C)
        w[att + "ln_x.weight"] = rng.uniform(0.5, 1.5, size=C)
        w[att + "ln_x.bias"] = rng.uniform(-0.2, 0.2, size=C)
        w[ffn_ + "x_k"] = _vector(rng, C, 0.05, 0.95)
        w[ffn_ + "key.weight"] = _matrix(rng, F, C)
        w[ffn_ + "value.weight"] = _matrix(rng, C, F)
    return w


def random_rwkv4(layers=2, embd=16, vocab=40, ffn=None, seed=0):
    rng = np.random.default_rng(seed)
    C, F = embd, ffn or 4 * embd
    w = {}
    _common(rng, w, layers, C, vocab)
    for i in range(layers):
        att, ffn_ = f"blocks.{i}.att.", f"blocks.{i}.ffn."
        w[att + "time_decay"] = rng.uniform(-5.0, 3.0, size=C)
        w[att + "time_first"] = rng.uniform(-1.0, 1.0, size=C)
        for mix in ("time_mix_k", "time_mix_v", "time_mix_r"):
            w[att + mix] = _vector(rng, C, 0.05, 0.95)
        for proj in ("key", "value", "receptance", "output"):
            w[f"{att}{proj}.weight"] = _matrix(rng, C, C)
        for mix in ("time_mix_k", "time_mix_r"):
            w[ffn_ + mix] = _vector(rng, C, 0.05, 0.95)
        w[ffn_ + "key.weight"] = _matrix(rng, F, C)
        w[ffn_ + "receptance.weight"] = _matrix(rng, C, C)
        w[ffn_ + "value.weight"] = _matrix(rng, C, F)
    return w


def round_to_f16(weights):
    """The same weights, each value rounded to the nearest float16 (so F16 and F32 files agree)."""
    return {name: values.astype(np.float16).astype(np.float64) for name, values in weights.items()}


def round_to_bf16(weights):
    """The same weights, each value rounded to the nearest bfloat16."""
    return {name: bf16_bits_to_f32(f32_to_bf16_bits(values)).astype(np.float64) for name, values in weights.items()}
