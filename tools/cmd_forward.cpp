// rwkvc forward: runs tokens through a model and reports (or saves) the logits and the state.
#include <algorithm>
#include <charconv>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "frontend/graph_builders.h"
#include "frontend/npy.h"
#include "frontend/state_file.h"
#include "tools/commands.h"
#include "tools/model_source.h"

namespace rwkvc::cli {

namespace {

struct ForwardCliOptions {
  std::string model;
  std::string tokens;
  std::string backend = "cpu";
  std::string mode = "gpt";
  bool all_logits = false;
  std::string save_logits;
  std::string state_in;
  std::string save_state;
};

// "1,2,3" -> {1, 2, 3}
std::vector<std::int32_t> parse_token_list(const std::string& text) {
  std::vector<std::int32_t> tokens;
  std::size_t begin = 0;
  while (begin <= text.size() && !text.empty()) {
    std::size_t end = std::min(text.find(',', begin), text.size());
    std::string_view item(text.data() + begin, end - begin);
    std::int32_t id = 0;
    auto [stop, error] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || error != std::errc() || stop != item.data() + item.size())
      throw std::invalid_argument(fmt::format("token list item {} ('{}') is not an integer token id", tokens.size(), item));
    tokens.push_back(id);
    begin = end + 1;
  }
  if (tokens.empty()) throw std::invalid_argument("the token list is empty: give at least one token id");
  return tokens;
}

std::string top_logits(std::span<const float> logits, std::size_t count) {
  std::vector<std::size_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  count = std::min(count, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(),
                    [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  std::string text;
  for (std::size_t i = 0; i < count; ++i) text += fmt::format("{}{} ({:.4f})", i ? ", " : "", order[i], logits[order[i]]);
  return text;
}

void run_forward(const ForwardCliOptions& o) {
  std::vector<std::int32_t> tokens = parse_token_list(o.tokens);
  FeedMode mode = FeedMode::parse(o.mode);
  Model model = load_model_or_default(o.model);
  auto exe = make_backend(o.backend)->compile(build_graph(model.config), model.weights);

  State state = exe->new_state();
  if (!o.state_in.empty()) {
    HostState host = load_state(o.state_in);
    try {
      state = exe->import_state(host);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("state '{}' does not fit this model: {}", o.state_in, e.what()));
    }
  }
  HostTensor logits = feed(*exe, tokens, state, mode, o.all_logits);

  fmt::print("model: {}\n", describe(model));
  fmt::print("backend: {}, mode: {}, {} tokens\n", o.backend, mode.name(), tokens.size());
  auto last = logits.f32().last(static_cast<std::size_t>(model.config.vocab));
  fmt::print("logits {}: last position's top 5: {}\n", to_string(logits.shape()), top_logits(last, 5));
  if (!o.save_logits.empty()) {
    write_npy(o.save_logits, logits);
    fmt::print("saved logits to {}\n", o.save_logits);
  }
  if (!o.save_state.empty()) {
    save_state(o.save_state, state.to_host());
    fmt::print("saved state to {}\n", o.save_state);
  }
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto options = std::make_shared<ForwardCliOptions>();
  CLI::App* cmd = app.add_subcommand("forward", "Run tokens through a model and report the logits");
  cmd->add_option("--model", options->model, "Model file (default: the built-in default model)");
  cmd->add_option("--tokens", options->tokens, "Token ids, comma-separated: 1,2,3")->required();
  cmd->add_option("--backend", options->backend, "Backend")->capture_default_str();
  cmd->add_option("--mode", options->mode, "gpt (all at once), rnn (one token per call) or chunk:N")
      ->capture_default_str();
  cmd->add_flag("--all-logits", options->all_logits, "Keep every position's logits ([T, vocab])");
  cmd->add_option("--save-logits", options->save_logits, "Write the logits to a float32 .npy file");
  cmd->add_option("--state-in", options->state_in, "Start from a saved state");
  cmd->add_option("--save-state", options->save_state, "Save the final state");
  cmd->callback([options] { run_forward(*options); });
}

}  // namespace rwkvc::cli
