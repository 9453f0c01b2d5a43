// The machine a benchmark runs on: what it is (for the report), how fast its host memory and
// arithmetic are (the CPU's roofline, which the backend interface cannot tell), and how much
// memory this process holds.
#pragma once

#include <cstdint>
#include <string>

namespace rwkvc::cli {

struct MachineInfo {
  std::string cpu_model;  // /proc/cpuinfo "model name"
  unsigned hardware_threads = 0;
  std::int64_t memory_bytes = 0;  // MemTotal
  std::string kernel;             // uname -sr
  std::string compiler;           // that built rwkvc
};

// The 1-minute load average: above zero, other processes shared the CPU while it ran.
double load_average();

MachineInfo describe_machine();

// Host memory bandwidth in GB/s from the median of several large memcpy calls, one slice per
// hardware thread at once, counting the bytes read and the bytes written (as STREAM's copy
// does). A read-only stream (decode) can beat it, so a decode roofline may pass 100%.
double measure_memcpy_gbs();

// Attainable f32 TFLOP/s of this build on every hardware thread: independent multiply-adds the
// compiler vectorises with the instruction set rwkvc itself is built for; the best of 5 trials.
double measure_cpu_peak_tflops();

// Resident memory of this process now (VmRSS) and at its peak since the last reset (VmHWM).
std::int64_t current_rss_bytes();
std::int64_t peak_rss_bytes();
// Starts a new peak from the current resident size (Linux /proc/self/clear_refs); false when
// the kernel does not allow it, in which case the peak is the process's since its start.
bool reset_peak_rss();

}  // namespace rwkvc::cli
