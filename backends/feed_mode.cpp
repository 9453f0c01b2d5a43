#include "backends/feed_mode.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

FeedMode FeedMode::parse(std::string_view text) {
  if (text == "gpt") return gpt();
  if (text == "rnn") return rnn();
  constexpr std::string_view kChunk = "chunk:";
  if (text.starts_with(kChunk)) {
    std::string_view digits = text.substr(kChunk.size());
    std::int64_t n = 0;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (error == std::errc() && end == digits.data() + digits.size() && n > 0) return chunked(n);
  }
  throw std::invalid_argument(fmt::format("unknown mode '{}': expected gpt, rnn or chunk:N with N >= 1", text));
}

std::string FeedMode::name() const {
  if (chunk == 0) return "gpt";
  if (chunk == 1) return "rnn";
  return fmt::format("chunk:{}", chunk);
}

HostTensor feed(Executable& exe, std::span<const std::int32_t> tokens, State& state, FeedMode mode, bool all_logits) {
  if (mode.chunk == 0 || tokens.empty()) return exe.forward(tokens, state, {all_logits});
  // Check every token before the first call, so a bad token leaves the state untouched.
  exe.check_tokens(tokens);

  std::vector<float> rows;
  HostTensor last;
  for (std::size_t begin = 0; begin < tokens.size(); begin += static_cast<std::size_t>(mode.chunk)) {
    std::size_t count = std::min(static_cast<std::size_t>(mode.chunk), tokens.size() - begin);
    last = exe.forward(tokens.subspan(begin, count), state, {all_logits});
    if (all_logits) rows.insert(rows.end(), last.f32().begin(), last.f32().end());
  }
  if (!all_logits) return last;
  auto vocab = static_cast<Dim>(rows.size() / tokens.size());
  return HostTensor::from_f32(Shape{static_cast<Dim>(tokens.size()), vocab}, std::move(rows));
}

}  // namespace rwkvc
