#include "backends/cuda/prefill_wkv_prepare.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

// Tokens a chunk record covers (cuda_wkv7_prompt.cpp's chunk).
constexpr int kChunk = 16;

// Threads a block (threads / N groups of N, a token each at a time) and the blocks an SM should
// hold (__launch_bounds__'s second bound; 4: 64 registers at 256 threads): 256 x 4 unless
// RWKVC_CUDA_WKV_FUSED_PREPARE_SHAPE=<threads>x<blocks> (for measurements: 128, 256 or 512).
struct BlockShape {
  int threads = 256, blocks = 4;
};

BlockShape block_shape() {
  BlockShape shape;
  const char* value = std::getenv("RWKVC_CUDA_WKV_FUSED_PREPARE_SHAPE");
  if (value == nullptr || *value == '\0') return shape;
  if (std::sscanf(value, "%dx%d", &shape.threads, &shape.blocks) != 2 ||
      (shape.threads != 128 && shape.threads != 256 && shape.threads != 512) || shape.blocks < 1 || shape.blocks > 16)
    throw std::invalid_argument(fmt::format(
        "RWKVC_CUDA_WKV_FUSED_PREPARE_SHAPE='{}': expected <threads>x<blocks an SM>, threads 128, 256 or 512", value));
  return shape;
}

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t i = text.find(from); i != std::string::npos; i = text.find(from, i + to.size()))
    text.replace(i, from.size(), to);
  return text;
}

// `text`'s lines `spaces` further in (generated code placed inside this kernel's loop).
std::string indented(const std::string& text, int spaces) {
  std::string out, pad(static_cast<std::size_t>(spaces), ' ');
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = text.find('\n', begin);
    end = end == std::string::npos ? text.size() : end + 1;
    out += pad + text.substr(begin, end - begin);
    begin = end;
  }
  return out;
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return hash;
}

}  // namespace

bool fused_prepare_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_WKV_FUSED_PREPARE");
  return value != nullptr && std::string(value) == "1";
}

std::optional<Wkv7RecordsWriter> fused_prepare(Program& program, const CodegenScope& scope, const Op& wkv, Dim H, Dim N,
                                               std::span<const ValueId> stored, const std::vector<bool>& materialized,
                                               const std::vector<std::optional<std::size_t>>& slot) {
  if (N != 32 && N != 64) return std::nullopt;
  // Groups of 64 meet at named barriers 1..8 at most (a block has 0..15); groups of 32 at none.
  BlockShape shape = block_shape();
  // out0..out4: r, w, k, a, b in shared memory; then the stored values.
  std::vector<ValueId> outputs{wkv.operands[0], wkv.operands[1], wkv.operands[2], wkv.operands[4], wkv.operands[5]};
  outputs.insert(outputs.end(), stored.begin(), stored.end());
  ElementCode code =
      generate_element_code(scope, outputs, materialized, Shape{kSeq, H * N}, "", HeadBlock{H, N, "h", "d0"});
  // The head sums are written for a block of one head's N threads; here each group of N threads
  // of the block has a token of its own.
  std::string prologue = replace_all(code.prologue, "block_sum(", fmt::format("wkv7f_group_sum<{}>(", N));
  prologue = replace_all(replace_all(prologue, "threadIdx.x", "lane"), "blockDim.x", std::to_string(N));
  for (const char* block_wide : {"threadIdx", "blockDim", "blockIdx", "gridDim", "__syncthreads"})
    if (prologue.find(block_wide) != std::string::npos || code.body.find(block_wide) != std::string::npos)
      return std::nullopt;

  std::string params = "i64 T, float* full, float* tail";
  for (std::size_t o = 5; o < outputs.size(); ++o) {
    DType type = at(outputs[o]) < scope.store_as.size() ? scope.store_as[at(outputs[o])] : DType::f32;
    params += fmt::format(", {}* out{}", type == DType::f32 ? "float" : type == DType::f16 ? "f16" : "bf16", o);
  }
  for (std::size_t i = 0; i < code.inputs.size(); ++i) params += fmt::format(", const float* __restrict__ in{}", i);
  std::string text = fmt::format(
      "({0}) {{\n"
      "  __shared__ __align__(16) Wkv7cPrepareShared<{2}, {3}> sh;\n"
      "  kernel_entry();\n"
      "  const int chunk = blockIdx.x, h = blockIdx.y, lane = threadIdx.x % {2};\n"
      "  for (int token = threadIdx.x / {2}; token < {3}; token += {4} / {2}) {{\n"
      "    const i64 d0 = (i64)chunk * {3} + token;\n"
      "    if (d0 < T) {{\n"
      "      const i64 origin = d0 * {1} + (i64)h * {2};\n"
      "      const Wkv7fRow out0{{sh.r[token], origin}}, out1{{sh.w[token], origin}}, out2{{sh.k[token], origin}},\n"
      "          out3{{sh.a[token], origin}}, out4{{sh.b[token], origin}};\n"
      "{5}"
      "      const i64 d1 = (i64)h * {2} + lane;\n"
      "{6}"
      "    }} else {{  // past the last token: changes nothing\n"
      "      sh.r[token][lane] = 0.0f;\n      sh.w[token][lane] = 1.0f;\n      sh.k[token][lane] = 0.0f;\n"
      "      sh.a[token][lane] = 0.0f;\n      sh.b[token][lane] = 0.0f;\n"
      "    }}\n"
      "  }}\n"
      "  wkv7f_record<{2}, {3}, {4}>(sh, chunk, h, {7}, (int)T, full, tail);\n"
      "}}\n",
      params, H * N, N, kChunk, shape.threads, indented(prologue, 4), indented(code.body, 2), H);
  std::string bounds = fmt::format("__launch_bounds__({}, {})", shape.threads, shape.blocks);
  std::string name = fmt::format("wkv7f_prepare_{:016x}", fnv1a(bounds + text));
  program.module.include(kWkv7ChunkedSource);
  program.module.include(kWkv7PrepareFusedSource);
  KernelHandle* kernel =
      program.module.kernel(name, fmt::format("extern \"C\" __global__ void {} {}{}", bounds, name, text));

  std::vector<std::size_t> slots;  // the stored values', then the inputs'
  for (std::size_t o = 5; o < outputs.size(); ++o) slots.push_back(*slot[at(outputs[o])]);
  for (ValueId id : code.inputs) slots.push_back(*slot[at(id)]);
  auto heads = static_cast<unsigned>(H), threads = static_cast<unsigned>(shape.threads);
  return [kernel, slots, heads, threads](RunContext& ctx, void* full, void* tail) {
    LaunchArgs args;
    args.add<long long>(ctx.T).add(full).add(tail);
    for (std::size_t s : slots) args.add(ctx.slots[s]);
    auto chunks = static_cast<unsigned>((ctx.T + kChunk - 1) / kChunk);
    ctx.launch(*kernel, dim3(chunks, heads), dim3(threads), args);
  };
}

}  // namespace rwkvc::cuda
