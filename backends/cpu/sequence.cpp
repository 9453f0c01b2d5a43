// Ops that move rows: the embedding gather, the token shift, the last row, and reshape.
#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cpu/kernels.h"

namespace rwkvc::cpu {

void embedding(std::span<const float> table, std::int64_t columns, std::span<const std::int32_t> tokens,
               std::span<float> out) {
  auto width = static_cast<std::size_t>(columns);
  std::size_t rows = width > 0 ? table.size() / width : 0;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    // Executables check tokens first; this guards a table smaller than the vocabulary.
    if (tokens[t] < 0 || static_cast<std::size_t>(tokens[t]) >= rows)
      throw std::invalid_argument(
          fmt::format("token {} at position {} is outside the embedding table of {} rows", tokens[t], t, rows));
    std::span<const float> row = table.subspan(static_cast<std::size_t>(tokens[t]) * width, width);
    std::copy(row.begin(), row.end(), out.begin() + static_cast<std::ptrdiff_t>(t * width));
  }
}

void token_shift(std::span<const float> x, std::span<const float> previous, std::span<float> out) {
  std::copy(previous.begin(), previous.end(), out.begin());
  std::copy(x.begin(), x.end() - static_cast<std::ptrdiff_t>(previous.size()),
            out.begin() + static_cast<std::ptrdiff_t>(previous.size()));
}

void last_row(std::span<const float> x, std::span<float> out) {
  std::copy(x.end() - static_cast<std::ptrdiff_t>(out.size()), x.end(), out.begin());
}

void reshape(std::span<const float> x, std::span<float> out) { std::copy(x.begin(), x.end(), out.begin()); }

}  // namespace rwkvc::cpu
