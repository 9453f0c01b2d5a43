"""RWKV-4, one token at a time, as docs/equations.md writes it.

Weights come as {tensor name: float64 array}, with the [1, 1, C] vectors already flattened to [C].
Matrices are stored [out, in], so a projection is W @ x.
"""
import numpy as np

from ops import layer_norm, relu, sigmoid

EMPTY_PP = -1e30  # the exponent of an empty sum: exp(pp - anything finite) is 0


def tensor_shapes(cfg, weights):
    """Every tensor the equations read, with its shape."""
    C, F, V = cfg.embd, cfg.ffn, cfg.vocab
    shapes = {"emb.weight": (V, C), "blocks.0.ln0.weight": (C,), "blocks.0.ln0.bias": (C,),
              "ln_out.weight": (C,), "ln_out.bias": (C,), "head.weight": (V, C)}
    for i in range(cfg.layers):
        b = f"blocks.{i}."
        for name in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "att.time_decay", "att.time_first",
                     "att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "ffn.time_mix_k", "ffn.time_mix_r"):
            shapes[b + name] = (C,)
        for proj in ("key", "value", "receptance", "output"):
            shapes[f"{b}att.{proj}.weight"] = (C, C)
        shapes[b + "ffn.key.weight"] = (F, C)
        shapes[b + "ffn.receptance.weight"] = (C, C)
        shapes[b + "ffn.value.weight"] = (C, F)
    return shapes


def state_slots(cfg):
    """(slot name, shape, initial value) in the graph's state order."""
    slots = []
    for i in range(cfg.layers):
        b = f"blocks.{i}."
        slots += [(b + "att.shift", (cfg.embd,), 0.0), (b + "att.aa", (cfg.embd,), 0.0),
                  (b + "att.bb", (cfg.embd,), 0.0), (b + "att.pp", (cfg.embd,), EMPTY_PP),
                  (b + "ffn.shift", (cfg.embd,), 0.0)]
    return slots


def wkv4_step(aa, bb, pp, w, u, k, v):
    """Returns (wkv, aa, bb, pp) for one token, elementwise over channels.

    The true sums are A = aa * exp(pp) and B = bb * exp(pp); keeping the exponent pp apart and
    subtracting the largest exponent before each exp keeps every exp in (0, 1].
    """
    q = np.maximum(pp, u + k)
    e_state, e_token = np.exp(pp - q), np.exp(u + k - q)
    wkv = (e_state * aa + e_token * v) / (e_state * bb + e_token)
    q = np.maximum(pp + w, k)
    e_state, e_token = np.exp(pp + w - q), np.exp(k - q)
    return wkv, e_state * aa + e_token * v, e_state * bb + e_token, q


def time_mix(w, i, x, state):
    att = f"blocks.{i}.att."
    prev = state[att + "shift"]
    xk, xv, xr = (x * w[att + m] + prev * (1 - w[att + m]) for m in ("time_mix_k", "time_mix_v", "time_mix_r"))
    state[att + "shift"] = x

    r = sigmoid(w[att + "receptance.weight"] @ xr)
    k = w[att + "key.weight"] @ xk
    v = w[att + "value.weight"] @ xv
    decay = -np.exp(w[att + "time_decay"])  # stored raw; the per-step log-decay is -exp(.)
    wkv, state[att + "aa"], state[att + "bb"], state[att + "pp"] = wkv4_step(
        state[att + "aa"], state[att + "bb"], state[att + "pp"], decay, w[att + "time_first"], k, v)
    return w[att + "output.weight"] @ (r * wkv)


def channel_mix(w, i, x, state):
    ffn = f"blocks.{i}.ffn."
    prev = state[ffn + "shift"]
    xk, xr = (x * w[ffn + m] + prev * (1 - w[ffn + m]) for m in ("time_mix_k", "time_mix_r"))
    state[ffn + "shift"] = x
    r = sigmoid(w[ffn + "receptance.weight"] @ xr)
    return r * (w[ffn + "value.weight"] @ np.square(relu(w[ffn + "key.weight"] @ xk)))


def forward_token(cfg, w, token, state):
    """Logits [V] of one token; `state` (slot name -> array) is updated in place."""
    x = layer_norm(w["emb.weight"][token], w, "blocks.0.ln0")
    for i in range(cfg.layers):
        x = x + time_mix(w, i, layer_norm(x, w, f"blocks.{i}.ln1"), state)
        x = x + channel_mix(w, i, layer_norm(x, w, f"blocks.{i}.ln2"), state)
    return w["head.weight"] @ layer_norm(x, w, "ln_out")
