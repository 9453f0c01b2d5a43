#!/usr/bin/env python3
"""A plain PyTorch RWKV-7 ("x070") for comparison with rwkvc's CUDA backend.

Random f16 weights of a given shape (the shapes of the released models: matrices [out, in],
LoRA ranks sized as the released models size them), activations and matmuls in f16 as plain
PyTorch inference does, the WKV state in f32. The recurrence runs token by token (the plain
formulation; no custom kernel). Measures, with CUDA events and medians:
  - decode tokens/s at batch 1 (one token per call, state carried),
  - prefill tokens/s for 512- and 4096-token prompts (last position's logits only),
eagerly and under torch.compile (the per-token-independent parts compiled once for any prompt
length, dynamic=True, so a run compiles each part twice (first layer, other layers), not once per
length; the recurrence step compiled once and called per token). Prints one JSON object; each
mode's figures also go to stderr as soon as they are measured, so a run cut short keeps them.

  python3 bench/torch_rwkv7.py --layers 24 --embd 2048 [--vocab 65536] [--modes eager,compile]
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def lora_rank(scale, power, embd):
    return max(32, round(scale * embd ** power / 32) * 32)


class RWKV7:
    """Weights and the forward pass; the equations follow docs/equations.md (RWKV-7)."""

    def __init__(self, layers, embd, vocab, head_size=64, seed=0, device="cuda"):
        self.L, self.C, self.V, self.N = layers, embd, vocab, head_size
        self.H = embd // head_size
        self.F = 4 * embd
        dw, da, dv, dg = (lora_rank(1.8, 0.5, embd), lora_rank(1.8, 0.5, embd),
                          lora_rank(1.3, 0.5, embd), lora_rank(0.6, 0.8, embd))
        gen = torch.Generator(device=device).manual_seed(seed)
        f16 = torch.float16

        def mat(rows, cols):  # scaled so that activations stay tame
            return (torch.randn(rows, cols, generator=gen, device=device) / math.sqrt(cols)).to(f16)

        def vec(low, high):
            return (low + (high - low) * torch.rand(embd, generator=gen, device=device)).to(f16)

        C = embd
        self.emb = mat(vocab, C)
        self.ln0 = (vec(0.9, 1.1), vec(-0.1, 0.1))
        self.ln_out = (vec(0.9, 1.1), vec(-0.1, 0.1))
        self.head = mat(vocab, C)
        self.blocks = []
        for i in range(layers):
            b = {
                "ln1": (vec(0.9, 1.1), vec(-0.1, 0.1)), "ln2": (vec(0.9, 1.1), vec(-0.1, 0.1)),
                "mix": torch.stack([vec(0.0, 1.0) for _ in range(6)]),  # x_r, x_w, x_k, x_v, x_a, x_g
                "R": mat(C, C), "K": mat(C, C), "Vw": mat(C, C), "O": mat(C, C),
                "w0": vec(-6.0, -1.0), "w1": mat(C, dw), "w2": mat(dw, C),
                "a0": vec(-0.5, 0.5), "a1": mat(C, da), "a2": mat(da, C),
                "g1": mat(C, dg), "g2": mat(dg, C),
                "k_k": vec(0.5, 1.0), "k_a": vec(0.5, 1.0), "r_k": vec(-0.5, 0.5),
                "ln_x": (vec(0.9, 1.1), vec(-0.1, 0.1)),
                "ffn_x_k": vec(0.0, 1.0), "ffn_K": mat(self.F, C), "ffn_V": mat(C, self.F),
            }
            if i > 0:
                b.update({"v0": vec(-0.5, 0.5), "v1": mat(C, dv), "v2": mat(dv, C)})
            self.blocks.append(b)
        self.weight_bytes = sum(t.numel() * t.element_size() for t in self._tensors())

    def _tensors(self):
        yield from (self.emb, self.head, *self.ln0, *self.ln_out)
        for b in self.blocks:
            for value in b.values():
                yield from (value if isinstance(value, tuple) else (value,))

    def new_state(self):
        z = lambda *shape: torch.zeros(*shape, device="cuda")
        return [(z(self.C).half(), z(self.H, self.N, self.N), z(self.C).half()) for _ in range(self.L)]

    # The parts of a layer that see every token at once.
    def time_mix_in(self, b, first, x, shift, v_first):
        T, C = x.shape
        x = F.layer_norm(x, (C,), *b["ln1"])
        prev = torch.cat([shift[None], x[:-1]])
        xx = prev - x
        xr, xw, xk, xv, xa, xg = (x[None] + xx[None] * b["mix"][:, None, :]).unbind(0)
        r = xr @ b["R"].t()
        k = xk @ b["K"].t()
        v = xv @ b["Vw"].t()
        w = b["w0"] + torch.tanh(xw @ b["w1"]) @ b["w2"]
        decay = torch.exp(-math.exp(-0.5) * torch.sigmoid(w.float()))
        a = torch.sigmoid(b["a0"] + (xa @ b["a1"]) @ b["a2"])
        g = torch.sigmoid(xg @ b["g1"]) @ b["g2"]
        kk = F.normalize((k * b["k_k"]).float().view(T, self.H, self.N), dim=-1).view(T, C)
        k = k * (1 + (a - 1) * b["k_a"])
        if first:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(b["v0"] + (xv @ b["v1"]) @ b["v2"])
        return (r.float(), decay, k.float(), v.float(), -kk, kk * a.float(), g, x[-1], v_first)

    @staticmethod
    def wkv_step(S, r, w, k, v, a, b):
        # S [H, N, N] (rows index v, columns index k); the vectors [H, N] of one token.
        sa = torch.bmm(S, a.unsqueeze(-1))
        S = S * w.unsqueeze(1) + sa * b.unsqueeze(1) + v.unsqueeze(-1) * k.unsqueeze(1)
        return S, torch.bmm(S, r.unsqueeze(-1)).squeeze(-1)

    def time_mix_out(self, b, x_in, y, r, k, v, g):
        T, C = y.shape
        yn = F.group_norm(y, self.H, b["ln_x"][0].float(), b["ln_x"][1].float(), eps=64e-5)
        bonus = ((r * k * b["r_k"].float()).view(T, self.H, self.N).sum(-1, keepdim=True) * v.view(T, self.H, self.N))
        out = ((yn + bonus.view(T, C)).half() * g) @ b["O"].t()
        return x_in + out

    def channel_mix(self, b, x, shift):
        C = x.shape[1]
        xn = F.layer_norm(x, (C,), *b["ln2"])
        prev = torch.cat([shift[None], xn[:-1]])
        xk = xn + (prev - xn) * b["ffn_x_k"]
        h = torch.relu(xk @ b["ffn_K"].t()) ** 2
        return x + h @ b["ffn_V"].t(), xn[-1]

    def head_logits(self, x):
        return F.layer_norm(x[-1:], (self.C,), *self.ln_out) @ self.head.t()


class Runner:
    """Runs the model eagerly or with the dense parts compiled."""

    def __init__(self, model, compiled):
        self.m = model
        # Prompt lengths differ from call to call: the dense parts compile with a symbolic token
        # count; the recurrence step always sees one token.
        wrap = (lambda f, dynamic=True: torch.compile(f, dynamic=dynamic)) if compiled else (lambda f, dynamic=True: f)
        self.time_mix_in = wrap(model.time_mix_in)
        self.wkv_step = wrap(model.wkv_step, dynamic=False)
        self.time_mix_out = wrap(model.time_mix_out)
        self.channel_mix = wrap(model.channel_mix)
        self.head = wrap(model.head_logits)

    @torch.no_grad()
    def forward(self, tokens, state):
        m = self.m
        x = F.layer_norm(m.emb[tokens], (m.C,), *m.ln0)
        v_first = None
        T = tokens.shape[0]
        for i in range(m.L):
            att_shift, S, ffn_shift = state[i]
            block = m.blocks[i]  # passed as tensors, so one compiled graph serves every layer
            r, w, k, v, a, b, g, last, v_first = self.time_mix_in(block, i == 0, x, att_shift, v_first)
            H, N = m.H, m.N
            ys = []
            for t in range(T):
                S, y = self.wkv_step(S, r[t].view(H, N), w[t].view(H, N), k[t].view(H, N), v[t].view(H, N),
                                     a[t].view(H, N), b[t].view(H, N))
                ys.append(y.view(m.C))
            x = self.time_mix_out(block, x, torch.stack(ys), r, k, v, g)
            x, ffn_last = self.channel_mix(block, x, ffn_shift)
            state[i] = (last, S, ffn_last)
        return self.head(x)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1000.0)
    return statistics.median(times)


def measure(model, compiled, decode_tokens, prompt_lengths, prefill_repeats):
    runner = Runner(model, compiled)
    gen = torch.Generator(device="cuda").manual_seed(1)
    tok = lambda n: torch.randint(0, model.V, (n,), generator=gen, device="cuda")
    result = {}
    state = model.new_state()
    started = time.time()
    for _ in range(3):  # warm-up (and compilation)
        runner.forward(tok(1), state)
    result["decode_warmup_seconds"] = time.time() - started
    seconds = timed(lambda: runner.forward(tok(1), state), decode_tokens)
    result["decode_tokens_per_s"] = 1.0 / seconds
    for index, length in enumerate(prompt_lengths):
        prompt = tok(length)
        if index == 0:  # warm-up (and compilation, which serves every later length)
            warm = time.time()
            runner.forward(prompt, model.new_state())
            result["prefill_warmup_seconds"] = time.time() - warm
        seconds = timed(lambda: runner.forward(prompt, model.new_state()), prefill_repeats)
        result[f"prefill_{length}_tokens_per_s"] = length / seconds
    result["wall_seconds_with_warmup"] = time.time() - started
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--embd", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=65536)
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--decode-tokens", type=int, default=30)
    parser.add_argument("--prompts", default="512,4096")
    parser.add_argument("--prefill-repeats", type=int, default=3)
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    model = RWKV7(args.layers, args.embd, args.vocab)
    out = {"model": f"rwkv7 L{args.layers} D{args.embd} V{args.vocab} f16", "torch": torch.__version__,
           "device": torch.cuda.get_device_name(), "weight_bytes": model.weight_bytes}
    prompts = [int(p) for p in args.prompts.split(",") if p]
    for mode in args.modes.split(","):
        try:
            out[mode] = measure(model, mode == "compile", args.decode_tokens, prompts, args.prefill_repeats)
        except Exception as error:  # report what ran; a failed mode must not hide the other
            out[mode] = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps({mode: out[mode]}), file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
