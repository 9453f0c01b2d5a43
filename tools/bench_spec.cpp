#include "tools/bench_spec.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/backend.h"
#include "passes/pass_manager.h"
#include "tools/model_source.h"

namespace rwkvc::cli {

namespace {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> items;
  std::size_t begin = 0;
  for (;;) {
    std::size_t end = text.find(separator, begin);
    items.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos) return items;
    begin = end + 1;
  }
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || stop != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> parse_double(std::string_view text) {
  std::string copy(text);
  std::size_t used = 0;
  try {
    double value = std::stod(copy, &used);
    if (used == copy.size()) return value;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

ModelConfig parse_shape(const std::string& text) {
  const std::string usage = "write it like rwkv7:L24:D2048:V65536 (RWKV-7 also takes N<head size>)";
  std::vector<std::string> items = split(text, ':');
  Arch arch;
  if (items[0] == "rwkv7") arch = Arch::rwkv7;
  else if (items[0] == "rwkv4") arch = Arch::rwkv4;
  else throw std::invalid_argument(fmt::format("--shape '{}': unknown architecture '{}' (rwkv4 or rwkv7); {}", text, items[0], usage));

  std::map<char, std::int64_t> sizes;
  const std::string letters = arch == Arch::rwkv7 ? "LDVN" : "LDV";
  for (std::size_t i = 1; i < items.size(); ++i) {
    const std::string& item = items[i];
    if (item.empty() || letters.find(item[0]) == std::string::npos)
      throw std::invalid_argument(fmt::format("--shape '{}': item '{}' is not one of {} followed by a number; {}", text,
                                              item, fmt::join(letters, "/"), usage));
    std::optional<std::int64_t> value = parse_int(std::string_view(item).substr(1));
    if (!value || *value < 1)
      throw std::invalid_argument(fmt::format("--shape '{}': item '{}' needs a positive whole number after '{}'", text,
                                              item, item[0]));
    if (!sizes.emplace(item[0], *value).second)
      throw std::invalid_argument(fmt::format("--shape '{}': '{}' is given twice", text, item[0]));
  }
  for (char required : std::string("LDV"))
    if (!sizes.contains(required)) {
      const char* meaning = required == 'L' ? "layers" : required == 'D' ? "embedding width" : "vocabulary";
      throw std::invalid_argument(fmt::format("--shape '{}': missing {}<{}>; {}", text, required, meaning, usage));
    }
  std::int64_t head_size = sizes.contains('N') ? sizes['N'] : 64;
  if (arch == Arch::rwkv7 && sizes['D'] % head_size != 0)
    throw std::invalid_argument(fmt::format("--shape '{}': the width D{} is not a multiple of the head size {}", text,
                                            sizes['D'], head_size));
  return standard_config(arch, sizes['L'], sizes['D'], sizes['V'], head_size);
}

std::vector<std::string> parse_backends(const std::string& text) {
  std::vector<std::string> known = backend_names();
  std::vector<std::string> chosen;
  for (const std::string& name : split(text, ',')) {
    if (name.empty())
      throw std::invalid_argument(fmt::format("--backends '{}': an item is empty; this build has: {}", text, fmt::join(known, ", ")));
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw std::invalid_argument(fmt::format("--backends '{}': unknown backend '{}'; this build has: {}", text, name,
                                              fmt::join(known, ", ")));
    if (std::find(chosen.begin(), chosen.end(), name) != chosen.end())
      throw std::invalid_argument(fmt::format("--backends '{}': '{}' is listed twice", text, name));
    chosen.push_back(name);
  }
  return chosen;
}

std::vector<int> parse_levels(const std::vector<std::string>& items) {
  std::vector<int> levels;
  for (const std::string& raw : items) {
    std::string_view item = raw;
    if (item.starts_with("-O")) item.remove_prefix(2);
    else if (item.starts_with("O")) item.remove_prefix(1);
    std::optional<std::int64_t> level = parse_int(item);
    if (!level || *level < 0 || *level > 2)
      throw std::invalid_argument(fmt::format("optimisation level '{}' is not one of 0, 1, 2 (write -O0,-O2 or --levels 0,2)", raw));
    if (std::find(levels.begin(), levels.end(), *level) != levels.end())
      throw std::invalid_argument(fmt::format("optimisation level {} is given twice", *level));
    levels.push_back(static_cast<int>(*level));
  }
  return levels;
}

std::optional<double> PerBackend::get(const std::string& backend) const {
  auto it = by_backend.find(backend);
  if (it != by_backend.end()) return it->second;
  return all;
}

namespace {

// "VALUE" for every backend, or "BACKEND=VALUE,...": `value` returns nullopt for a bad one.
template <typename ParseValue>
PerBackend parse_assignments(const std::string& flag, const std::string& text, ParseValue value, const char* example) {
  PerBackend figures;
  if (text.empty()) return figures;
  std::vector<std::string> known = backend_names();
  for (const std::string& item : split(text, ',')) {
    std::size_t equals = item.find('=');
    std::string name = equals == std::string::npos ? "" : item.substr(0, equals);
    std::optional<double> parsed = value(equals == std::string::npos ? item : item.substr(equals + 1));
    if (!parsed)
      throw std::invalid_argument(fmt::format("{} '{}': '{}' is not {}", flag, text, item, example));
    if (name.empty()) {
      figures.all = *parsed;
    } else {
      if (std::find(known.begin(), known.end(), name) == known.end())
        throw std::invalid_argument(
            fmt::format("{} '{}': unknown backend '{}'; this build has: {}", flag, text, name, fmt::join(known, ", ")));
      figures.by_backend[name] = *parsed;
    }
  }
  return figures;
}

}  // namespace

PerBackend parse_per_backend(const std::string& flag, const std::string& text) {
  auto positive = [](const std::string& item) {
    std::optional<double> v = parse_double(item);
    return v && *v > 0 ? v : std::nullopt;
  };
  return parse_assignments(flag, text, positive, "a positive number or BACKEND=NUMBER (e.g. 3350 or cuda=3350)");
}

PerBackend parse_device_indices(const std::string& text) {
  auto index = [](const std::string& item) -> std::optional<double> {
    std::optional<std::int64_t> i = parse_int(item);
    if (i && *i >= 0) return static_cast<double>(*i);
    return std::nullopt;
  };
  return parse_assignments("--device", text, index,
                           "a device index or BACKEND=INDEX (e.g. 1 or cuda=1; rwkvc devices lists them)");
}

std::vector<BenchPipeline> bench_pipelines(const PipelineOptions& shared, const std::vector<int>& levels) {
  if (!shared.passes.empty()) {
    if (!levels.empty())
      throw std::invalid_argument("give either -O levels or --passes: a --passes pipeline replaces the level's");
    passes::parse_pipeline(shared.passes);  // names the unknown pass before anything is loaded
    return {{fmt::format("--passes={}", shared.passes), -1, shared}};
  }
  std::vector<BenchPipeline> pipelines;
  for (int level : levels.empty() ? std::vector<int>{shared.level} : levels) {
    BenchPipeline p{fmt::format("-O{}", level), level, shared};
    p.options.level = level;
    passes::preset_pipeline(level);
    pipelines.push_back(std::move(p));
  }
  return pipelines;
}

std::string this_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!bytes.empty() && bytes.back() == '\0') bytes.pop_back();
  std::string line;
  for (const std::string& argument : split(bytes, '\0')) {
    bool plain = !argument.empty() && std::all_of(argument.begin(), argument.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=:,+@%").find(c) != std::string_view::npos;
    });
    std::string quoted = plain ? argument : "'";
    if (!plain) {
      for (char c : argument) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      quoted += "'";
    }
    line += (line.empty() ? "" : " ") + quoted;
  }
  return line;
}

}  // namespace rwkvc::cli
