// Independent jobs run at once on a few threads started for the occasion: compilers (NVRTC
// programs, shaderc shaders) that take tens of milliseconds to seconds each, so starting the
// threads costs nothing next to the work. Header-only, so every backend library can use it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace rwkvc {

// The threads to use: the hardware's, or fewer when the environment variable `cap_variable`
// holds a positive number; at least 1, at most 64.
inline std::size_t pool_threads(const char* cap_variable) {
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  if (const char* cap = cap_variable != nullptr ? std::getenv(cap_variable) : nullptr; cap != nullptr)
    if (long n = std::atol(cap); n > 0) threads = static_cast<std::size_t>(n);
  return std::clamp<std::size_t>(threads, 1, 64);
}

// Runs job(0) .. job(count - 1) on up to `threads` threads, the caller's included, each job
// once, taken in order as threads come free (so list the longest first). Every job runs even
// when some throw; then the exception of the lowest-numbered failed job is rethrown.
inline void run_jobs(std::size_t count, std::size_t threads, const std::function<void(std::size_t)>& job) {
  std::atomic<std::size_t> next = 0;
  std::vector<std::exception_ptr> failures(count);
  auto worker = [&] {
    for (std::size_t i = next++; i < count; i = next++) {
      try {
        job(i);
      } catch (...) {
        failures[i] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < std::min(threads, count); ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);
}

}  // namespace rwkvc
