// How a token sequence is fed to an executable: all at once (GPT mode), one token per call
// (RNN mode) or N tokens per call, carrying the state. Every mode must give the same logits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "backends/backend.h"

namespace rwkvc {

struct FeedMode {
  std::int64_t chunk = 0;  // tokens per call; 0 = the whole sequence (GPT mode)

  static FeedMode gpt() { return {0}; }
  static FeedMode rnn() { return {1}; }
  static FeedMode chunked(std::int64_t n) { return {n}; }
  // "gpt", "rnn" or "chunk:N"; throws std::invalid_argument otherwise.
  static FeedMode parse(std::string_view text);
  std::string name() const;
};

// Runs `tokens` through `exe` in `mode`, updating `state`; returns the last position's logits
// ([V]) or, with all_logits, every position's ([T, V]), whatever the mode.
HostTensor feed(Executable& exe, std::span<const std::int32_t> tokens, State& state, FeedMode mode,
                bool all_logits = false);

}  // namespace rwkvc
