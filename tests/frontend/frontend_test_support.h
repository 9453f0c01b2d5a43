// Shared by the frontend tests: scratch directories, raw file bytes, and the official
// checkpoint tensor names and shapes written out from the model description (not from the code).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "frontend/model_config.h"
#include "ir/shape.h"

namespace rwkvc::test {

// A fresh directory for one test, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() / fmt::format("rwkvc-frontend-{}-{}", ::getpid(), counter++);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  // The names of everything in the directory, sorted.
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The 8-byte little-endian length of `header`, the header, then `data`: a safetensors file.
inline std::string safetensors_bytes(const std::string& header, const std::string& data = "",
                                     std::uint64_t length_field = UINT64_MAX) {
  std::uint64_t length = length_field == UINT64_MAX ? header.size() : length_field;
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  return bytes + header + data;
}

// Every tensor of an official checkpoint of this config, with its shape.
inline std::map<std::string, Shape> official_shapes(const ModelConfig& c) {
  const Dim C = c.embd, V = c.vocab, F = c.ffn;
  std::map<std::string, Shape> shapes{{"emb.weight", {V, C}},         {"blocks.0.ln0.weight", {C}},
                                      {"blocks.0.ln0.bias", {C}},     {"ln_out.weight", {C}},
                                      {"ln_out.bias", {C}},           {"head.weight", {V, C}}};
  for (std::int64_t i = 0; i < c.layers; ++i) {
    auto at = [&](const std::string& name, Shape shape) { shapes[fmt::format("blocks.{}.{}", i, name)] = shape; };
    const Shape mix{1, 1, C};
    for (const char* ln : {"ln1", "ln2"}) {
      at(std::string(ln) + ".weight", {C});
      at(std::string(ln) + ".bias", {C});
    }
    for (const char* m : {"receptance", "key", "value", "output"}) at(fmt::format("att.{}.weight", m), {C, C});
    at("ffn.key.weight", {F, C});
    at("ffn.value.weight", {C, F});
    if (c.arch == Arch::rwkv7) {
      for (const char* x : {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "k_k", "k_a"}) at(fmt::format("att.{}", x), mix);
      at("att.w1", {C, c.decay_lora});
      at("att.w2", {c.decay_lora, C});
      at("att.a1", {C, c.aaa_lora});
      at("att.a2", {c.aaa_lora, C});
      if (i > 0) {
        at("att.v0", mix);
        at("att.v1", {C, c.mv_lora});
        at("att.v2", {c.mv_lora, C});
      }
      at("att.g1", {C, c.gate_lora});
      at("att.g2", {c.gate_lora, C});
      at("att.r_k", {C / c.head_size, c.head_size});
      at("att.ln_x.weight", {C});
      at("att.ln_x.bias", {C});
      at("ffn.x_k", mix);
    } else {
      at("att.time_decay", {C});
      at("att.time_first", {C});
      for (const char* m : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r", "ffn.time_mix_k", "ffn.time_mix_r"}) at(m, mix);
      at("ffn.receptance.weight", {C, C});
    }
  }
  return shapes;
}

// Small configs whose sizes all differ, so a size read from the wrong tensor shows.
inline ModelConfig small_rwkv7(std::int64_t layers = 3) {
  ModelConfig c;
  c.arch = Arch::rwkv7;
  c.layers = layers;
  c.embd = 48;
  c.vocab = 100;
  c.ffn = 160;
  c.head_size = 16;
  c.decay_lora = 8;
  c.aaa_lora = 12;
  c.mv_lora = layers > 1 ? 4 : 0;
  c.gate_lora = 20;
  return c;
}

inline ModelConfig small_rwkv4(std::int64_t layers = 3) {
  ModelConfig c;
  c.arch = Arch::rwkv4;
  c.layers = layers;
  c.embd = 40;
  c.vocab = 90;
  c.ffn = 120;
  return c;
}

}  // namespace rwkvc::test
