"""The elementwise and normalisation functions both RWKV versions use, in float64."""
import numpy as np


def sigmoid(x):
    # exp(-softplus(-x)): the same function as 1 / (1 + exp(-x)) without overflow for large -x.
    return np.exp(-np.logaddexp(0.0, -x))


def layer_norm(x, weights, name, eps=1e-5):
    """LayerNorm over a vector with the affine `name`.weight / `name`.bias (biased variance)."""
    mean = x.mean()
    var = np.square(x - mean).mean()
    return (x - mean) / np.sqrt(var + eps) * weights[name + ".weight"] + weights[name + ".bias"]


def group_norm(x, groups, weight, bias, eps):
    """GroupNorm of a vector split into `groups` equal groups, with a per-channel affine."""
    g = x.reshape(groups, -1)
    mean = g.mean(axis=1, keepdims=True)
    var = np.square(g - mean).mean(axis=1, keepdims=True)
    return ((g - mean) / np.sqrt(var + eps)).reshape(-1) * weight + bias


def l2_normalise_rows(x, eps=1e-12):
    """Each row divided by max(its L2 norm, eps), as torch.nn.functional.normalize does."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def relu(x):
    return np.maximum(x, 0.0)
