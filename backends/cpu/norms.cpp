// Normalisations and reductions over the last axis (or contiguous groups of it).
#include <algorithm>
#include <cmath>

#include "backends/cpu/kernels.h"

namespace rwkvc::cpu {

namespace {

// out = (x - mean) / sqrt(var + eps), with the biased (population) variance. Two passes, so
// the variance never suffers the cancellation of E[x^2] - E[x]^2.
void standardize(std::span<const float> x, float eps, std::span<float> out) {
  float sum = 0.0f;
  for (float v : x) sum += v;
  float mean = sum / static_cast<float>(x.size());
  float squares = 0.0f;
  for (float v : x) squares += (v - mean) * (v - mean);
  float inv_std = 1.0f / std::sqrt(squares / static_cast<float>(x.size()) + eps);
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = (x[i] - mean) * inv_std;
}

void scale_and_shift(std::span<float> row, std::span<const float> weight, std::span<const float> bias) {
  for (std::size_t i = 0; i < row.size(); ++i) row[i] = row[i] * weight[i] + bias[i];
}

}  // namespace

void layer_norm(std::span<const float> x, std::int64_t columns, std::span<const float> weight,
                std::span<const float> bias, float eps, std::span<float> out) {
  auto width = static_cast<std::size_t>(columns);
  for (std::size_t start = 0; start < x.size(); start += width) {
    std::span<float> row = out.subspan(start, width);
    standardize(x.subspan(start, width), eps, row);
    scale_and_shift(row, weight, bias);
  }
}

void group_norm(std::span<const float> x, std::int64_t channels, std::int64_t groups, std::span<const float> weight,
                std::span<const float> bias, float eps, std::span<float> out) {
  auto width = static_cast<std::size_t>(channels);
  auto group_width = static_cast<std::size_t>(channels / groups);
  for (std::size_t start = 0; start < x.size(); start += width) {
    for (std::size_t g = start; g < start + width; g += group_width)
      standardize(x.subspan(g, group_width), eps, out.subspan(g, group_width));
    scale_and_shift(out.subspan(start, width), weight, bias);
  }
}

void l2_norm(std::span<const float> x, std::int64_t columns, std::int64_t groups, float eps, std::span<float> out) {
  auto group_width = static_cast<std::size_t>(columns / groups);
  for (std::size_t start = 0; start < x.size(); start += group_width) {
    std::span<const float> group = x.subspan(start, group_width);
    float squares = 0.0f;
    for (float v : group) squares += v * v;
    float divisor = std::max(std::sqrt(squares), eps);
    for (std::size_t i = 0; i < group_width; ++i) out[start + i] = group[i] / divisor;
  }
}

void reduce_sum(std::span<const float> x, std::int64_t columns, std::span<float> out) {
  auto width = static_cast<std::size_t>(columns);
  for (std::size_t row = 0; row < out.size(); ++row) {
    float sum = 0.0f;
    for (float v : x.subspan(row * width, width)) sum += v;
    out[row] = sum;
  }
}

}  // namespace rwkvc::cpu
