// The project's random numbers: fully specified, so models made by `rwkvc init` and sampled
// text are the same on every platform and standard library.
#pragma once

#include <array>
#include <cstdint>

namespace rwkvc {

// One step of splitmix64: advances `state` and returns a well-mixed 64-bit value.
std::uint64_t splitmix64(std::uint64_t& state);

// xoshiro256** seeded through splitmix64: the same numbers on every platform and standard
// library, which std::mt19937 with the std:: distributions does not promise.
class Rng {
 public:
  using Words = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed);
  // Resumes a generator at the position `words()` once reported. Throws std::invalid_argument
  // for the all-zero state, from which xoshiro never leaves.
  static Rng from_words(const Words& words);

  std::uint64_t next();
  double uniform();  // in [0, 1), 53 random bits
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  const Words& words() const { return s_; }

 private:
  Rng() = default;
  Words s_{};
};

}  // namespace rwkvc
