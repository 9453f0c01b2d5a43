// The CPU backend's worker threads, started once per process: a one-token matmul is split over
// every core dozens of times per layer, far too often to start threads for each.
#pragma once

#include <cstdint>
#include <functional>

namespace rwkvc::cpu {

// Runs task(0) .. task(count - 1), spread over the pool's threads and the calling thread, and
// returns when all are done. Calls from different threads take turns; a call from inside a task
// runs its tasks on the calling thread. Tasks must not throw.
void run_parallel(std::int64_t count, const std::function<void(std::int64_t)>& task);

// Threads that run_parallel uses, the caller included.
std::int64_t parallel_width();

}  // namespace rwkvc::cpu
