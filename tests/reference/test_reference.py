"""Self-checks of the NumPy reference: the file format, state carrying, dtype independence,
WKV steps worked out by hand from the equations, and the command line's errors.

    cd tests/reference && /usr/bin/python3 -m unittest -v
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rwkv4  # noqa: E402
import rwkv7  # noqa: E402
from random_models import random_rwkv4, random_rwkv7, round_to_bf16, round_to_f16  # noqa: E402
from rwkv_reference import detect_config, load_safetensors, run  # noqa: E402
from safetensors_io import SafetensorsError, f32_to_bf16_bits, read_safetensors, write_safetensors  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rwkv_reference.py")
MODELS = {"rwkv7": random_rwkv7(seed=1), "rwkv4": random_rwkv4(seed=2)}


def relative_error(actual, expected):
    """max |actual - expected| over max |expected|, the measure the project's tests use."""
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def token_sequence(weights, count, seed=5):
    vocab = weights["emb.weight"].shape[0]
    return [int(t) for t in np.random.default_rng(seed).integers(0, vocab, size=count)]


def run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


class SafetensorsFormatTest(TempDirTest):
    def test_decodes_a_hand_built_file_of_each_dtype(self):
        data = struct.pack("<2f", 1.5, -2.0) + struct.pack("<2H", 0x3C00, 0xC100) + struct.pack("<2H", 0x3F80, 0xC0A0)
        header = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F16", "shape": [1, 2], "data_offsets": [8, 12]},
                             "c": {"dtype": "BF16", "shape": [2], "data_offsets": [12, 16]},
                             "__metadata__": {"format": "pt"}}).encode()
        with open(self.path("m.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + data)
        tensors, metadata = read_safetensors(self.path("m.safetensors"))
        self.assertEqual(metadata, {"format": "pt"})
        np.testing.assert_array_equal(tensors["a"], [1.5, -2.0])
        np.testing.assert_array_equal(tensors["b"], [[1.0, -2.5]])  # f16 0xC100: -(1 + 256/1024) * 2
        np.testing.assert_array_equal(tensors["c"], [1.0, -5.0])  # bf16 = top half of the f32 bits
        self.assertEqual(tensors["a"].dtype, np.float64)

    def test_bf16_encoding_rounds_half_to_even(self):
        # The bf16 spacing just above 1 is 2^-7; these two values lie exactly halfway.
        np.testing.assert_array_equal(f32_to_bf16_bits([1 + 2**-8, 1 + 3 * 2**-8]), [0x3F80, 0x3F82])

    def test_round_trips_each_dtype(self):
        values = {"x": np.array([[0.25, -3.0, 1e-3], [7.5, 0.1, -0.75]])}
        for dtype, tolerance in (("F32", 1e-7), ("F16", 1e-3), ("BF16", 1e-2)):
            with self.subTest(dtype=dtype):
                write_safetensors(self.path("m.safetensors"), values, dtype, metadata={"k": "v"})
                tensors, metadata = read_safetensors(self.path("m.safetensors"))
                self.assertEqual(metadata, {"k": "v"})
                np.testing.assert_allclose(tensors["x"], values["x"], rtol=tolerance)

    def test_rejects_a_truncated_file(self):
        write_safetensors(self.path("m.safetensors"), {"x": np.ones((4, 4))})
        with open(self.path("m.safetensors"), "rb") as f:
            blob = f.read()
        with open(self.path("m.safetensors"), "wb") as f:
            f.write(blob[:-5])
        with self.assertRaisesRegex(SafetensorsError, "tensor x: data_offsets"):
            read_safetensors(self.path("m.safetensors"))


class StateCarryingTest(unittest.TestCase):
    def test_chunks_carrying_the_state_equal_the_whole_sequence(self):
        for version, weights in MODELS.items():
            tokens = token_sequence(weights, 12)
            whole_logits, whole_state = run(weights, tokens)
            for size in (1, 3, 5):
                with self.subTest(version=version, chunk=size):
                    state, parts = None, []
                    for start in range(0, len(tokens), size):
                        logits, state = run(weights, tokens[start:start + size], state)
                        parts.append(logits)
                    self.assertLessEqual(relative_error(np.concatenate(parts), whole_logits), 1e-12)
                    self.assertEqual(state.keys(), whole_state.keys())
                    for slot in whole_state:
                        self.assertLessEqual(relative_error(state[slot], whole_state[slot]), 1e-12, slot)

    def test_the_carried_state_changes_the_logits(self):
        # Guards the test above: a state that carried nothing would pass it too.
        for version, weights in MODELS.items():
            with self.subTest(version=version):
                tokens = token_sequence(weights, 12)
                whole_logits, _ = run(weights, tokens)
                fresh_logits, _ = run(weights, tokens[6:])
                self.assertGreater(relative_error(fresh_logits, whole_logits[6:]), 1e-3)

    def test_logits_are_not_degenerate(self):
        for version, weights in MODELS.items():
            with self.subTest(version=version):
                logits, _ = run(weights, token_sequence(weights, 12))
                self.assertTrue(np.all(np.isfinite(logits)))
                self.assertGreater(logits.std(axis=1).min(), 0.1)  # across the vocabulary
                self.assertGreater(logits.std(axis=0).min(), 0.01)  # across positions


class CommandLineTest(TempDirTest):
    def test_state_written_by_one_run_starts_the_next(self):
        for version, weights in MODELS.items():
            with self.subTest(version=version):
                model = self.path(version + ".safetensors")
                write_safetensors(model, weights)
                tokens = token_sequence(weights, 12)
                first = run_cli("--model", model, "--tokens", ",".join(map(str, tokens[:7])), "--out", self.path("a"))
                self.assertEqual(first.returncode, 0, first.stderr)
                second = run_cli("--model", model, "--tokens", ",".join(map(str, tokens[7:])),
                                 "--out", self.path("b"), "--state-in", self.path("a"))
                self.assertEqual(second.returncode, 0, second.stderr)

                whole_logits, whole_state = run(load_safetensors(model)[0], tokens)
                logits = np.load(self.path("b/logits.npy"))
                self.assertEqual((logits.dtype, logits.shape), (np.float64, (5, weights["emb.weight"].shape[0])))
                self.assertLessEqual(relative_error(logits, whole_logits[7:]), 1e-12)
                for slot, expected in whole_state.items():
                    saved = np.load(self.path(f"b/state/{slot}.npy"))
                    self.assertEqual(saved.shape, expected.shape, slot)
                    self.assertLessEqual(relative_error(saved, expected), 1e-12, slot)

    def test_state_files_have_the_documented_shapes(self):
        write_safetensors(self.path("m.safetensors"), MODELS["rwkv7"])
        result = run_cli("--model", self.path("m.safetensors"), "--tokens", "3", "--out", self.tmp)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(np.load(self.path("state/blocks.1.att.wkv.npy")).shape, (4, 4, 4))  # [H, N, N]
        self.assertEqual(np.load(self.path("state/blocks.1.ffn.shift.npy")).shape, (16,))


class DtypeIndependenceTest(TempDirTest):
    def check_same_logits(self, weights, dtype):
        write_safetensors(self.path("f32.safetensors"), weights, "F32")
        write_safetensors(self.path("narrow.safetensors"), weights, dtype)
        tokens = token_sequence(weights, 8)
        wide, _ = run(load_safetensors(self.path("f32.safetensors"))[0], tokens)
        narrow, _ = run(load_safetensors(self.path("narrow.safetensors"))[0], tokens)
        np.testing.assert_array_equal(narrow, wide)

    def test_f16_file_gives_the_logits_of_the_f32_file(self):
        for version, weights in MODELS.items():
            with self.subTest(version=version):
                self.check_same_logits(round_to_f16(weights), "F16")

    def test_bf16_file_gives_the_logits_of_the_f32_file(self):
        for version, weights in MODELS.items():
            with self.subTest(version=version):
                self.check_same_logits(round_to_bf16(weights), "BF16")


class HandComputedStepTest(unittest.TestCase):
    def test_wkv7_step_with_two_channels(self):
        S = np.array([[1.0, 2.0], [3.0, 4.0]])
        decay, kk, a = np.array([0.5, 0.25]), np.array([0.6, 0.8]), np.array([0.5, 1.0])
        k, v, r = np.array([1.0, 2.0]), np.array([1.0, -1.0]), np.array([1.0, 0.5])
        # sa = S (-kk) = [-(0.6 + 1.6), -(1.8 + 3.2)] = [-2.2, -5.0]; kk * a = [0.3, 0.8]
        # S_ij * decay_j + sa_i * (kk a)_j + v_i * k_j:
        #   row 0: 0.5 - 0.66 + 1 = 0.84,   0.5 - 1.76 + 2 = 0.74
        #   row 1: 1.5 - 1.5 - 1 = -1.0,    1.0 - 4.0 - 2 = -5.0
        # y = S r = [0.84 + 0.37, -1.0 - 2.5]
        new_S, y = rwkv7.wkv7_step(S, r, decay, k, v, kk, a)
        np.testing.assert_allclose(new_S, [[0.84, 0.74], [-1.0, -5.0]], rtol=0, atol=1e-15)
        np.testing.assert_allclose(y, [1.21, -3.5], rtol=0, atol=1e-15)

    def test_wkv7_step_is_the_papers_transition_matrix_form(self):
        # S_t = S_{t-1} (diag(w) - kk^T (a * kk)) + v^T k, in this file's column convention.
        rng = np.random.default_rng(3)
        S, r, k, v = rng.standard_normal((4, 4)), *rng.standard_normal((3, 4))
        decay, a = rng.uniform(0.5, 1.0, 4), rng.uniform(0.0, 1.0, 4)
        kk = rng.standard_normal(4)
        kk /= np.linalg.norm(kk)
        expected_S = S @ (np.diag(decay) - np.outer(kk, a * kk)) + np.outer(v, k)
        new_S, y = rwkv7.wkv7_step(S, r, decay, k, v, kk, a)
        np.testing.assert_allclose(new_S, expected_S, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(y, expected_S @ r, rtol=1e-14, atol=1e-14)

    def test_wkv7_decay_is_the_released_form(self):
        w = np.linspace(-8.0, 4.0, 25)
        softplus = np.log1p(np.exp(-w))  # softplus(-w)
        np.testing.assert_allclose(rwkv7.decay_from_w(w), np.exp(-np.exp(-softplus - 0.5)), rtol=1e-14)
        self.assertAlmostEqual(rwkv7.decay_from_w(np.array(0.0)), math.exp(-math.exp(-0.5) / 2), places=15)

    def test_wkv4_step_against_the_plain_exponential_form(self):
        aa, bb, pp = np.array([2.0]), np.array([1.0]), np.array([0.0])
        w, u, k, v = np.array([-1.0]), np.array([0.5]), np.array([0.5]), np.array([3.0])
        # With pp = 0 the sums are A = 2, B = 1. wkv = (A + e^(u+k) v) / (B + e^(u+k)) = (2 + 3e) / (1 + e).
        # Then A' = e^w A + e^k v = 2/e + 3 e^0.5 and B' = 1/e + e^0.5; pp' = max(pp + w, k) = 0.5.
        wkv, aa, bb, pp = rwkv4.wkv4_step(aa, bb, pp, w, u, k, v)
        e = math.e
        self.assertAlmostEqual(wkv[0], (2 + 3 * e) / (1 + e), places=14)
        self.assertEqual(pp[0], 0.5)
        self.assertAlmostEqual(aa[0] * math.exp(pp[0]), 2 / e + 3 * math.sqrt(e), places=14)
        self.assertAlmostEqual(bb[0] * math.exp(pp[0]), 1 / e + math.sqrt(e), places=14)

    def test_wkv4_first_token_is_its_own_value(self):
        # From the empty state (pp = -1e30) the past contributes exp(-1e30 - q) = 0.
        aa, bb, pp = np.zeros(2), np.zeros(2), np.full(2, rwkv4.EMPTY_PP)
        k, v = np.array([0.3, -2.0]), np.array([1.5, -4.0])
        wkv, aa, bb, pp = rwkv4.wkv4_step(aa, bb, pp, np.array([-0.2, -3.0]), np.array([0.7, 0.1]), k, v)
        np.testing.assert_array_equal(wkv, v)
        np.testing.assert_array_equal(aa, v)
        np.testing.assert_array_equal(bb, [1.0, 1.0])
        np.testing.assert_array_equal(pp, k)

    def test_wkv4_survives_keys_whose_exponential_overflows(self):
        # exp(1000) is inf in float64; the stable form only takes exps of differences.
        aa, bb, pp = np.array([1.0]), np.array([1.0]), np.array([0.0])
        w, u, k, v = np.array([-1.0]), np.array([0.0]), np.array([1000.0]), np.array([2.0])
        wkv, aa, bb, pp = rwkv4.wkv4_step(aa, bb, pp, w, u, k, v)
        np.testing.assert_array_equal([wkv[0], aa[0], bb[0], pp[0]], [2.0, 2.0, 1.0, 1000.0])

    def test_wkv4_steps_equal_the_unrolled_weighted_average(self):
        # wkv_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (the same with every v = 1)
        rng = np.random.default_rng(4)
        w, u = -math.exp(0.3), 0.4
        ks, vs = rng.uniform(-3.0, 3.0, 6), rng.standard_normal(6)
        aa, bb, pp = np.zeros(1), np.zeros(1), np.full(1, rwkv4.EMPTY_PP)
        for t in range(6):
            weights = [math.exp((t - 1 - i) * w + ks[i]) for i in range(t)] + [math.exp(u + ks[t])]
            expected = np.dot(weights, vs[:t + 1]) / sum(weights)
            wkv, aa, bb, pp = rwkv4.wkv4_step(aa, bb, pp, w, u, ks[t], vs[t])
            self.assertAlmostEqual(wkv[0], expected, places=13)


class BadInputTest(TempDirTest):
    def setUp(self):
        super().setUp()
        self.model = self.path("m.safetensors")
        write_safetensors(self.model, MODELS["rwkv7"])

    def assert_fails(self, message, *args):
        result = run_cli(*args, "--out", self.path("out"))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(message, result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def write_model(self, weights):
        write_safetensors(self.model, weights)
        return self.model

    def test_missing_model_file(self):
        self.assert_fails("no.safetensors: No such file", "--model", self.path("no.safetensors"), "--tokens", "1")

    def test_not_a_safetensors_file(self):
        with open(self.model, "wb") as f:
            f.write(b"\x05\x00")
        self.assert_fails("too short for a safetensors header", "--model", self.model, "--tokens", "1")

    def test_unknown_version(self):
        model = self.write_model({"emb.weight": np.ones((4, 2)), "blocks.0.att.key.weight": np.ones((2, 2))})
        self.assert_fails("unknown model version", "--model", model, "--tokens", "1")

    def test_missing_tensor(self):
        weights = dict(MODELS["rwkv7"])
        del weights["blocks.1.att.v2"]
        self.assert_fails("missing tensor blocks.1.att.v2", "--model", self.write_model(weights), "--tokens", "1")

    def test_tensor_of_the_wrong_shape(self):
        weights = dict(MODELS["rwkv7"], **{"blocks.0.ffn.value.weight": np.ones((16, 32))})
        self.assert_fails("blocks.0.ffn.value.weight has shape [16, 32], expected [16, 64]",
                          "--model", self.write_model(weights), "--tokens", "1")

    def test_token_past_the_vocabulary(self):
        self.assert_fails("token 40 at position 1 is out of range", "--model", self.model, "--tokens", "3,40")

    def test_negative_token(self):
        self.assert_fails("token -1 at position 0 is out of range", "--model", self.model, "--tokens=-1")

    def test_tokens_that_are_not_integers(self):
        self.assert_fails("not a comma-separated list of integers", "--model", self.model, "--tokens", "1,x")

    def test_missing_state_directory(self):
        self.assert_fails("does not exist", "--model", self.model, "--tokens", "1", "--state-in", self.path("none"))

    def test_state_of_another_version(self):
        rwkv4_model = self.path("rwkv4.safetensors")
        write_safetensors(rwkv4_model, MODELS["rwkv4"])
        self.assertEqual(run_cli("--model", rwkv4_model, "--tokens", "1", "--out", self.path("s")).returncode, 0)
        self.assert_fails("blocks.0.att.wkv", "--model", self.model, "--tokens", "1", "--state-in", self.path("s"))

    def test_missing_argument(self):
        self.assert_fails("--model", "--tokens", "1")


class ConfigTest(unittest.TestCase):
    def test_sizes_come_from_the_shapes(self):
        cfg = detect_config(random_rwkv7(layers=3, embd=24, head_size=8, vocab=30, ffn=40))
        self.assertEqual((cfg.version, cfg.layers, cfg.embd, cfg.vocab, cfg.ffn, cfg.heads, cfg.head_size),
                         ("rwkv7", 3, 24, 30, 40, 3, 8))
        cfg = detect_config(random_rwkv4(layers=4, embd=12, vocab=20, ffn=36))
        self.assertEqual((cfg.version, cfg.layers, cfg.embd, cfg.vocab, cfg.ffn), ("rwkv4", 4, 12, 20, 36))

    def test_layer_zero_value_mix_is_ignored(self):
        # Some RWKV-7 files carry v0/v1/v2 in layer 0 too; layer 0 defines v_first and mixes nothing.
        weights = MODELS["rwkv7"]
        extra = dict(weights, **{"blocks.0.att.v0": np.ones((1, 1, 16)), "blocks.0.att.v1": np.ones((16, 4)),
                                 "blocks.0.att.v2": np.ones((4, 16))})
        tokens = token_sequence(weights, 4)
        np.testing.assert_array_equal(run(extra, tokens)[0], run(weights, tokens)[0])


if __name__ == "__main__":
    unittest.main()
