// The CPU backend's thread pool: every task runs exactly once, callers on several threads take
// turns, and a task that splits its own work again does not wait on itself.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "backends/cpu/thread_pool.h"

namespace rwkvc::test {

TEST_CASE("every task of a parallel run runs exactly once", "[cpu][threads]") {
  for (std::int64_t count : {0, 1, 2, 7, 64, 1000}) {
    std::vector<std::atomic<int>> runs(static_cast<std::size_t>(count));
    for (int round = 0; round < 50; ++round) cpu::run_parallel(count, [&](std::int64_t i) { ++runs[static_cast<std::size_t>(i)]; });
    for (std::int64_t i = 0; i < count; ++i) CHECK(runs[static_cast<std::size_t>(i)].load() == 50);
  }
  CHECK(cpu::parallel_width() >= 1);
}

TEST_CASE("callers on several threads and nested runs share the pool", "[cpu][threads]") {
  std::atomic<std::int64_t> total{0};
  std::vector<std::jthread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int round = 0; round < 100; ++round)
        cpu::run_parallel(8, [&](std::int64_t) {
          cpu::run_parallel(3, [&](std::int64_t inner) { total += inner + 1; });  // nested: runs inline
        });
    });
  callers.clear();  // joins
  CHECK(total.load() == 4 * 100 * 8 * (1 + 2 + 3));
}

}  // namespace rwkvc::test
