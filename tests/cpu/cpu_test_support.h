// Shared by the CPU backend's tests: graphs built around one op, with inputs that are weights
// holding random non-zero data, run through make_cpu_backend(); and the error measure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "ir/builder.h"

namespace rwkvc::test {

// Each expectation is computed in double by the most direct loop. The backend computes in f32,
// so every result is a few f32 roundings (each at most 2^-24 ~ 6e-8 relative) away from it:
// 1e-6 of the result's scale leaves room for those and for nothing else.
inline constexpr double kTolerance = 1e-6;

// max |got - want| / max |want|; infinite when the sizes differ or got has a NaN.
inline double relative_error(std::span<const float> got, const std::vector<double>& want) {
  if (got.size() != want.size()) return INFINITY;
  double max_diff = 0, scale = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    max_diff = std::isnan(diff) ? INFINITY : std::max(max_diff, diff);
    scale = std::max(scale, std::abs(want[i]));
  }
  return scale > 0 ? max_diff / scale : max_diff;
}

inline double relative_error(const HostTensor& got, const std::vector<double>& want) {
  return relative_error(got.f32(), want);
}

// Non-zero values: magnitude uniform in [low, high], sign random.
inline std::vector<float> random_values(std::mt19937& rng, std::size_t count, float low = 0.1f, float high = 1.0f) {
  std::uniform_real_distribution<float> magnitude(low, high);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> values(count);
  for (float& v : values) v = negative(rng) ? -magnitude(rng) : magnitude(rng);
  return values;
}

// Values uniform in [low, high] (for inputs with a fixed sign, such as decays).
inline std::vector<float> uniform_values(std::mt19937& rng, std::size_t count, float low, float high) {
  std::uniform_real_distribution<float> pick(low, high);
  std::vector<float> values(count);
  for (float& v : values) v = pick(rng);
  return values;
}

// 0, 1, ..., count - 1
inline std::vector<std::int32_t> first_tokens(std::int64_t count) {
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>(i);
  return tokens;
}

// A graph under construction around the op under test, with the weights it binds. Values of
// shape [T, C] come from an embedding: with tokens 0..T-1, row t is row t of a random table.
class OpGraph {
 public:
  explicit OpGraph(unsigned seed = 1) : rng_(seed) {}

  GraphBuilder& builder() { return builder_; }
  std::mt19937& rng() { return rng_; }
  WeightMap& weights() { return weights_; }
  ValueId tokens() const { return tokens_; }

  ValueId weight(const std::string& key, const Shape& shape, std::vector<float> values) {
    values_[key] = values;
    weights_[key] = HostTensor::from_f32(shape, std::move(values));
    return builder_.weight(key, TensorType{DType::f32, shape});
  }
  ValueId random_weight(const std::string& key, const Shape& shape, float low = 0.1f, float high = 1.0f) {
    return weight(key, shape, random_values(rng_, static_cast<std::size_t>(shape.numel()), low, high));
  }
  // [T, columns]: row t is row t of the weight `key`, which has `rows` rows (T <= rows).
  ValueId sequence(const std::string& key, std::int64_t rows, std::int64_t columns, std::vector<float> values) {
    ValueId table = weight(key, Shape{rows, columns}, std::move(values));
    return builder_.op1(OpKind::embedding, {table, tokens_}, {}, key + ".rows");
  }
  ValueId random_sequence(const std::string& key, std::int64_t rows, std::int64_t columns, float low = 0.1f,
                          float high = 1.0f) {
    return sequence(key, rows, columns, random_values(rng_, static_cast<std::size_t>(rows * columns), low, high));
  }

  // A weight's data (its first `count` values); for a sequence, the first T * columns values
  // are the [T, columns] input.
  std::vector<double> values(const std::string& key, std::size_t count = SIZE_MAX) const {
    const std::vector<float>& v = values_.at(key);
    return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(count, v.size()))};
  }

  std::unique_ptr<Executable> compile(ValueId logits) {
    builder_.set_logits(logits);
    return make_cpu_backend()->compile(builder_.graph(), weights_);
  }

  // Compiles with `result` as the logits and runs tokens 0..T-1 from a fresh state, returning
  // every row of a result with a leading T.
  HostTensor run(ValueId result, std::int64_t seq_len) {
    auto exe = compile(result);
    State state = exe->new_state();
    return exe->forward(first_tokens(seq_len), state, ForwardOptions{.all_logits = true});
  }

 private:
  GraphBuilder builder_{"test"};
  ValueId tokens_ = builder_.tokens();
  WeightMap weights_;
  std::map<std::string, std::vector<float>> values_;
  std::mt19937 rng_;
};

}  // namespace rwkvc::test
