"""RWKV-7 ("x070"), one token at a time, as docs/equations.md writes it.

Weights come as {tensor name: float64 array}, with the [1, 1, C] vectors already flattened to [C].
Matrices are stored [out, in], so a projection is W @ x; the LoRA factors w1/a1/v1/g1 are [C, D]
and w2/a2/v2/g2 are [D, C], applied as x @ w1 then h @ w2.
"""
import numpy as np

from ops import group_norm, l2_normalise_rows, layer_norm, relu, sigmoid

TIME_MIXES = ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g")
LORAS = ("w", "a", "v", "g")  # decay, in-context learning rate, value residual, output gate
GROUP_NORM_EPS = 64e-5


def tensor_shapes(cfg, weights):
    """Every tensor the equations read, with its shape; LoRA ranks come from the file."""
    C, F, V, H, N = cfg.embd, cfg.ffn, cfg.vocab, cfg.heads, cfg.head_size
    shapes = {"emb.weight": (V, C), "blocks.0.ln0.weight": (C,), "blocks.0.ln0.bias": (C,),
              "ln_out.weight": (C,), "ln_out.bias": (C,), "head.weight": (V, C)}
    for i in range(cfg.layers):
        b = f"blocks.{i}."
        for name in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "att.ln_x.weight", "att.ln_x.bias",
                     "att.k_k", "att.k_a", "ffn.x_k"):
            shapes[b + name] = (C,)
        for mix in TIME_MIXES:
            shapes[b + "att." + mix] = (C,)
        for lora in LORAS:
            if lora == "v" and i == 0:
                continue  # layer 0 is where v_first comes from; it mixes nothing in
            rank = _rank(weights, f"{b}att.{lora}1")
            shapes[f"{b}att.{lora}1"] = (C, rank)
            shapes[f"{b}att.{lora}2"] = (rank, C)
            if lora != "g":
                shapes[f"{b}att.{lora}0"] = (C,)
        shapes[b + "att.r_k"] = (H, N)
        for proj in ("receptance", "key", "value", "output"):
            shapes[f"{b}att.{proj}.weight"] = (C, C)
        shapes[b + "ffn.key.weight"] = (F, C)
        shapes[b + "ffn.value.weight"] = (C, F)
    return shapes


def _rank(weights, name):
    tensor = weights.get(name)
    return tensor.shape[1] if tensor is not None and tensor.ndim == 2 else None


def state_slots(cfg):
    """(slot name, shape, initial value) in the graph's state order."""
    slots = []
    for i in range(cfg.layers):
        slots += [(f"blocks.{i}.att.shift", (cfg.embd,), 0.0),
                  (f"blocks.{i}.att.wkv", (cfg.heads, cfg.head_size, cfg.head_size), 0.0),
                  (f"blocks.{i}.ffn.shift", (cfg.embd,), 0.0)]
    return slots


def decay_from_w(w):
    # The released code writes exp(-exp(-softplus(-w) - 0.5)): the same function, since
    # exp(-softplus(-w)) = sigmoid(w). Each decay lies in (exp(-exp(-0.5)), 1) = (0.545, 1).
    return np.exp(-np.exp(-0.5) * sigmoid(w))


def wkv7_step(S, r, decay, k, v, kk, a):
    """One head's state update and read-out; S is [N, N], rows index v, columns index k."""
    sa = S @ (-kk)  # sa_i = sum_j S_ij * (-kk_j), from the state before this token
    S = S * decay[None, :] + np.outer(sa, kk * a) + np.outer(v, k)
    return S, S @ r


def time_mix(cfg, w, i, x, state, v_first):
    att = f"blocks.{i}.att."
    H, N = cfg.heads, cfg.head_size
    d = state[att + "shift"] - x
    xr, xw, xk, xv, xa, xg = (x + d * w[att + mix] for mix in TIME_MIXES)
    state[att + "shift"] = x

    r = w[att + "receptance.weight"] @ xr
    k = w[att + "key.weight"] @ xk
    v = w[att + "value.weight"] @ xv
    decay = decay_from_w(w[att + "w0"] + np.tanh(xw @ w[att + "w1"]) @ w[att + "w2"])
    a = sigmoid(w[att + "a0"] + (xa @ w[att + "a1"]) @ w[att + "a2"])
    g = sigmoid(xg @ w[att + "g1"]) @ w[att + "g2"]

    kk = l2_normalise_rows((k * w[att + "k_k"]).reshape(H, N)).reshape(-1)
    k = k * (1 + (a - 1) * w[att + "k_a"])
    if i == 0:
        v_first = v
    else:
        v = v + (v_first - v) * sigmoid(w[att + "v0"] + (xv @ w[att + "v1"]) @ w[att + "v2"])

    S = state[att + "wkv"].copy()
    y = np.empty(cfg.embd)
    for h in range(H):
        s = slice(h * N, (h + 1) * N)
        S[h], y[s] = wkv7_step(S[h], r[s], decay[s], k[s], v[s], kk[s], a[s])
    state[att + "wkv"] = S

    y = group_norm(y, H, w[att + "ln_x.weight"], w[att + "ln_x.bias"], GROUP_NORM_EPS)
    bonus = (r * k * w[att + "r_k"].reshape(-1)).reshape(H, N).sum(axis=1, keepdims=True)
    y = y + (bonus * v.reshape(H, N)).reshape(-1)
    return w[att + "output.weight"] @ (y * g), v_first


def channel_mix(w, i, x, state):
    ffn = f"blocks.{i}.ffn."
    xk = x + (state[ffn + "shift"] - x) * w[ffn + "x_k"]
    state[ffn + "shift"] = x
    return w[ffn + "value.weight"] @ np.square(relu(w[ffn + "key.weight"] @ xk))


def forward_token(cfg, w, token, state):
    """Logits [V] of one token; `state` (slot name -> array) is updated in place."""
    x = layer_norm(w["emb.weight"][token], w, "blocks.0.ln0")
    v_first = None
    for i in range(cfg.layers):
        out, v_first = time_mix(cfg, w, i, layer_norm(x, w, f"blocks.{i}.ln1"), state, v_first)
        x = x + out
        x = x + channel_mix(w, i, layer_norm(x, w, f"blocks.{i}.ln2"), state)
    return w["head.weight"] @ layer_norm(x, w, "ln_out")
