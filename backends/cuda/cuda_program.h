// A graph lowered to a list of steps, each one or a few kernel launches (or a cuBLAS call),
// plus the CUDA C++ source of every kernel they launch. Steps address memory through slots:
// one per graph value, then the 16-bit staging buffer of cuBLAS inputs, then the scratch of
// region bodies; the executable binds each slot to memory before a forward call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "ir/graph.h"

namespace rwkvc::cuda {

// A kernel of the program's module, found by name once the module is loaded.
struct KernelHandle {
  std::string name;
  cudaKernel_t kernel = nullptr;
};

// The parameters of one launch, in order, each copied by value.
class LaunchArgs {
 public:
  template <typename T>
  LaunchArgs& add(const T& value) {
    std::vector<std::byte> bytes(sizeof(T));
    std::memcpy(bytes.data(), &value, sizeof(T));
    storage_.push_back(std::move(bytes));
    return *this;
  }
  std::vector<void*> pointers() {
    std::vector<void*> out;
    for (auto& bytes : storage_) out.push_back(bytes.data());
    return out;
  }

 private:
  std::deque<std::vector<std::byte>> storage_;
};

// What a step sees when it runs.
struct RunContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  std::int64_t T = 1;
  std::vector<void*> slots;  // memory by slot
  bool last_logits_only = false;  // the logits' producer computes only the last row
  // Launch kernels as programmatic dependents of the previous one (sm_90): each kernel's launch
  // and weight loads overlap its predecessor's tail (every kernel waits for it with grid_wait).
  bool dependent_launch = false;
  std::int64_t launches = 0;
  // While profiling (RWKVC_CUDA_PROFILE): each launch between two events, by kernel name.
  struct Timing {
    std::string name;
    cudaEvent_t start, stop;
  };
  std::vector<Timing>* timings = nullptr;

  // Runs `enqueue` (one launch or library call), counted and, when profiling, timed as `name`.
  void record(const std::string& name, const std::function<void()>& enqueue);

  float* f32(std::size_t slot) const { return static_cast<float*>(slots[slot]); }
  void launch(const KernelHandle& kernel, dim3 grid, dim3 block, LaunchArgs& args, std::size_t shared_bytes = 0);
  // A grid-stride launch of blocks of 256 for `count` elements.
  void launch_elements(const KernelHandle& kernel, std::int64_t count, LaunchArgs& args);
};

using Step = std::function<void(RunContext&)>;

// The module's source as the steps ask for kernels: template families included once, each
// entry point or generated kernel defined once (identical generated bodies share a name).
class ModuleSource {
 public:
  void include(const char* family);
  // The handle of kernel `name`; `definition` joins the source the first time the name is asked.
  KernelHandle* kernel(const std::string& name, const std::string& definition = "");
  std::string text() const;
  std::deque<KernelHandle>& handles() { return handles_; }
  const std::deque<KernelHandle>& handles() const { return handles_; }

  // What text() joins, for compiling it in parts (module_parts.h): the families in the order
  // included, and each definition with the name of the kernel it defines.
  struct Definition {
    std::string name, text;
  };
  const std::vector<const char*>& families() const { return families_; }
  const std::vector<Definition>& definitions() const { return definitions_; }

 private:
  std::vector<const char*> families_;
  std::vector<Definition> definitions_;
  std::deque<KernelHandle> handles_;
};

struct Program {
  std::vector<Step> steps;
  ModuleSource module;                // every kernel the steps launch
  std::size_t graph_slots = 0;        // slots [0, graph_slots) are the graph's values
  std::size_t staging_slot = 0;       // = graph_slots: 16-bit copies of cuBLAS inputs
  std::vector<Shape> staged;          // the shapes staged there
  // Scratch s (slot staging_slot + 1 + s) holds region-body values of these shapes, one at a time,
  // or, reserved by name, what one kind of step keeps to itself (reserved_scratch).
  std::vector<std::vector<Shape>> scratch;
  std::map<std::string, std::size_t> reserved;  // name -> scratch index
  std::set<ValueId> transposed_weights;  // weights read as [K, N]: uploaded as [N, K]
  std::vector<bool> state_in_place;   // by state slot: the producer writes the state itself
  // By op: the op whose step runs it (itself, or the last of a batch it joined): its operands
  // must stay live until then.
  std::vector<std::size_t> runs_at;
  bool uses_cublas = false;
  // By graph slot: the 16-bit type the value is held in during calls of more than 8 tokens
  // (prefill_half.h), or f32.
  std::vector<DType> long_call_dtype;
  std::size_t scratch_slot(std::size_t s) const { return staging_slot + 1 + s; }
  std::size_t slot_count() const { return staging_slot + 1 + scratch.size(); }

  // The slot of a region's next body value: each region numbers its values from 0 (`used`), so
  // the s-th values of all regions share scratch s (sized for the largest); reserved buffers
  // are skipped.
  std::size_t region_scratch(std::size_t& used, const Shape& shape);
  // The slot of the scratch buffer `name`, the same for every step that names it (steps run one
  // after another: e.g. every layer's chunked WKV7 shares one set of chunk records), sized for
  // the largest shape asked; region values never share it.
  std::size_t reserved_scratch(const std::string& name, const Shape& shape);
};

// `graph` is what precompute_token_free leaves.
// Throws IrError for an op or region body no kernel covers.
Program build_program(const Graph& graph);

}  // namespace rwkvc::cuda
