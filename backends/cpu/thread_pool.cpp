#include "backends/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace rwkvc::cpu {

namespace {

thread_local bool inside_task = false;

// One run's tasks: workers that wake late hold on to the job they saw, whose counter is spent.
struct Job {
  const std::function<void(std::int64_t)>* task;
  std::int64_t count;
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> done{0};

  // Takes tasks until none is left.
  void drain() {
    inside_task = true;
    for (std::int64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      (*task)(i);
      done.fetch_add(1, std::memory_order_release);
    }
    inside_task = false;
  }
};

class ThreadPool {
 public:
  ThreadPool() {
    unsigned extra = std::max(1u, std::thread::hardware_concurrency()) - 1;
    for (unsigned i = 0; i < extra; ++i) workers_.emplace_back([this](std::stop_token stop) { work(stop); });
  }
  ~ThreadPool() {
    for (std::jthread& worker : workers_) worker.request_stop();
    {
      std::lock_guard lock(mutex_);
      job_.reset();
    }
    wake_.notify_all();
  }

  std::int64_t width() const { return static_cast<std::int64_t>(workers_.size()) + 1; }

  void run(std::int64_t count, const std::function<void(std::int64_t)>& task) {
    std::lock_guard turn(caller_);
    auto job = std::make_shared<Job>(&task, count);
    {
      std::lock_guard lock(mutex_);
      job_ = job;
    }
    wake_.notify_all();
    job->drain();
    // Every task has been taken; wait for the ones still running on workers.
    while (job->done.load(std::memory_order_acquire) < count) std::this_thread::yield();
    std::lock_guard lock(mutex_);
    job_.reset();
  }

 private:
  void work(std::stop_token stop) {
    std::shared_ptr<Job> last;
    while (true) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return (job_ && job_ != last) || stop.stop_requested(); });
        if (stop.stop_requested()) return;
        job = last = job_;
      }
      job->drain();
    }
  }

  std::mutex caller_;  // one run at a time
  std::mutex mutex_;   // guards job_
  std::condition_variable wake_;
  std::shared_ptr<Job> job_;
  std::vector<std::jthread> workers_;
};

ThreadPool& pool() {
  static ThreadPool instance;
  return instance;
}

}  // namespace

void run_parallel(std::int64_t count, const std::function<void(std::int64_t)>& task) {
  if (count <= 1 || inside_task) {
    for (std::int64_t i = 0; i < count; ++i) task(i);
    return;
  }
  pool().run(count, task);
}

std::int64_t parallel_width() { return pool().width(); }

}  // namespace rwkvc::cpu
