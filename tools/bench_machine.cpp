#include "tools/bench_machine.h"

#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace rwkvc::cli {

namespace {

// The value of the first line of a /proc file starting with `key`, e.g. "VmRSS:  1764 kB".
std::string proc_field(const char* file, std::string_view key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(key)) {
      std::size_t colon = line.find(':');
      std::size_t begin = line.find_first_not_of(" \t", colon + 1);
      return begin == std::string::npos ? "" : line.substr(begin);
    }
  return "";
}

std::int64_t kib_field(const char* file, std::string_view key) {
  std::string value = proc_field(file, key);
  return value.empty() ? 0 : std::stoll(value) * 1024;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

MachineInfo describe_machine() {
  MachineInfo info;
  info.cpu_model = proc_field("/proc/cpuinfo", "model name");
  if (info.cpu_model.empty()) info.cpu_model = "unknown CPU";
  info.hardware_threads = std::max(1u, std::thread::hardware_concurrency());
  info.memory_bytes = kib_field("/proc/meminfo", "MemTotal");
  utsname name{};
  if (::uname(&name) == 0) info.kernel = fmt::format("{} {}", name.sysname, name.release);
#if defined(__clang__)
  info.compiler = fmt::format("clang {}", __clang_version__);
#elif defined(__GNUC__)
  info.compiler = fmt::format("gcc {}", __VERSION__);
#endif
  return info;
}

double measure_memcpy_gbs() {
  // Far larger than any last-level cache, so the copy runs at DRAM speed; one slice per
  // hardware thread, copied at once, as the backends' own threads read.
  const std::size_t bytes = std::size_t{256} << 20;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t slice = bytes / threads;
  std::vector<char> from(bytes, 1), to(bytes, 0);  // filled: every page is mapped before timing
  std::vector<double> rates;
  for (int round = 0; round < 11; ++round) {
    std::vector<std::thread> workers;
    auto start = std::chrono::steady_clock::now();
    for (unsigned t = 0; t < threads; ++t)
      workers.emplace_back([&, t] { std::memcpy(to.data() + t * slice, from.data() + t * slice, slice); });
    for (std::thread& w : workers) w.join();
    double seconds = seconds_since(start);
    rates.push_back(2.0 * static_cast<double>(slice * threads) / seconds / 1e9);
  }
  volatile char sink = to[bytes / 2];
  (void)sink;
  return median(rates);
}

namespace {

// 64 independent chains of a*x + b: enough in flight to fill the vector units; the compiler
// vectorises the inner loop with the instruction set this file is built for.
double multiply_adds(std::int64_t rounds) {
  constexpr int kLanes = 64;
  alignas(64) float x[kLanes];
  for (int i = 0; i < kLanes; ++i) x[i] = 1.0f + static_cast<float>(i) * 1e-3f;
  const float a = 0.999999f, b = 1e-7f;
  for (std::int64_t r = 0; r < rounds; ++r)
    for (int i = 0; i < kLanes; ++i) x[i] = x[i] * a + b;
  float sum = 0;
  for (float v : x) sum += v;
  return sum;
}

// Seconds of CPU time the calling thread has used.
double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

}  // namespace

double measure_cpu_peak_tflops() {
  constexpr int kLanes = 64;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const std::int64_t rounds = 5'000'000;
  // A ceiling of the hardware: each thread is timed by the CPU time it got, so a machine
  // that is busy, or a container allowed fewer cores than it sees, does not lower it; and
  // other work only ever slows a trial, so the best one counts.
  double best = 0;
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<std::thread> workers;
    std::vector<double> sinks(threads), rates(threads);
    for (unsigned t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        double start = thread_cpu_seconds();
        sinks[t] = multiply_adds(rounds);
        rates[t] = 2.0 * kLanes * static_cast<double>(rounds) / (thread_cpu_seconds() - start);
      });
    for (std::thread& w : workers) w.join();
    double total = 0;
    for (double rate : rates) total += rate;
    best = std::max(best, total / 1e12);
  }
  return best;
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double one_minute = 0;
  in >> one_minute;
  return one_minute;
}

std::int64_t current_rss_bytes() { return kib_field("/proc/self/status", "VmRSS"); }

std::int64_t peak_rss_bytes() { return kib_field("/proc/self/status", "VmHWM"); }

bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

}  // namespace rwkvc::cli
