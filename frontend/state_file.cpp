#include "frontend/state_file.h"

#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "frontend/safetensors.h"

namespace rwkvc {

namespace {

constexpr std::string_view kFormat = "rwkvc-state";

std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> items;
  if (text.empty()) return items;
  for (std::size_t begin = 0;;) {
    std::size_t end = text.find(',', begin);
    items.push_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return items;
    begin = end + 1;
  }
}

class StateFileReader {
 public:
  explicit StateFileReader(const std::string& path) : path_(path), file_(read_safetensors(path)) {}

  HostState read() {
    if (metadata_or_empty("format") != kFormat)
      fail(fmt::format("it is not an rwkvc state file (its metadata has no format={})", kFormat));
    HostState state;
    state.layout.arch = metadata("arch");
    std::vector<std::string_view> names = split_commas(metadata("slots"));
    std::vector<std::string_view> inits = split_commas(metadata("init"));
    if (inits.size() != names.size())
      fail(fmt::format("its metadata lists {} slots but {} init values", names.size(), inits.size()));
    if (file_.tensors.size() != names.size())
      fail(fmt::format("its metadata lists {} slots but it holds {} tensors", names.size(), file_.tensors.size()));
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::string name(names[i]);
      auto it = file_.tensors.find(name);
      if (it == file_.tensors.end()) fail(fmt::format("it has no tensor for slot '{}'", name));
      const HostTensor& tensor = it->second;
      if (tensor.dtype() != DType::f32)
        fail(fmt::format("slot '{}' is {}, expected f32", name, dtype_name(tensor.dtype())));
      state.layout.slots.push_back({name, tensor.shape(), parse_init(name, inits[i])});
      state.slots.emplace_back(tensor.f32().begin(), tensor.f32().end());
    }
    return state;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(fmt::format("state file '{}': {}", path_, why));
  }

  std::string metadata_or_empty(const std::string& key) const {
    auto it = file_.metadata.find(key);
    return it == file_.metadata.end() ? std::string() : it->second;
  }

  const std::string& metadata(const std::string& key) const {
    auto it = file_.metadata.find(key);
    if (it == file_.metadata.end()) fail(fmt::format("its metadata has no '{}'", key));
    return it->second;
  }

  double parse_init(const std::string& slot, std::string_view text) const {
    double value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size())
      fail(fmt::format("slot '{}' has init value '{}', which is not a number", slot, text));
    return value;
  }

  const std::string& path_;
  SafetensorsFile file_;
};

}  // namespace

void save_state(const std::string& path, const HostState& state) {
  const std::vector<StateSlot>& slots = state.layout.slots;
  if (state.slots.size() != slots.size())
    throw std::invalid_argument(fmt::format("cannot save state to '{}': {} values for {} slots", path,
                                            state.slots.size(), slots.size()));
  WeightMap tensors;
  std::vector<std::string> names, inits;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const StateSlot& slot = slots[i];
    if (slot.name.empty() || slot.name.find(',') != std::string::npos)
      throw std::invalid_argument(
          fmt::format("cannot save state to '{}': slot name '{}' is empty or has a comma", path, slot.name));
    if (state.slots[i].size() != static_cast<std::size_t>(slot.shape.numel()))
      throw std::invalid_argument(fmt::format("cannot save state to '{}': slot '{}' holds {} values, its shape {} has {}",
                                              path, slot.name, state.slots[i].size(), to_string(slot.shape),
                                              slot.shape.numel()));
    if (!tensors.emplace(slot.name, HostTensor::from_f32(slot.shape, state.slots[i])).second)
      throw std::invalid_argument(fmt::format("cannot save state to '{}': slot '{}' appears twice", path, slot.name));
    names.push_back(slot.name);
    inits.push_back(fmt::format("{}", slot.init));  // shortest text that reads back to the same double
  }
  write_safetensors(path, tensors,
                    {{"format", std::string(kFormat)},
                     {"arch", state.layout.arch},
                     {"slots", fmt::format("{}", fmt::join(names, ","))},
                     {"init", fmt::format("{}", fmt::join(inits, ","))}});
}

HostState load_state(const std::string& path) { return StateFileReader(path).read(); }

}  // namespace rwkvc
