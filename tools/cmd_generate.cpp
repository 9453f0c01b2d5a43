// rwkvc generate: continues a prompt, printing the text as it is made (stdout holds only the
// text; speeds go to stderr). A state saved with --state-out resumes the generation exactly:
// besides the model's recurrent state, the file's metadata carries what the sampler and the
// loop need (see GenerationMetadata).
#include <charconv>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/feed_mode.h"
#include "frontend/graph_builders.h"
#include "frontend/safetensors.h"
#include "frontend/sampler.h"
#include "frontend/state_file.h"
#include "frontend/tokenizer.h"
#include "tools/commands.h"
#include "tools/model_source.h"
#include "tools/pipeline_options.h"

namespace rwkvc::cli {

namespace {

struct GenerateCliOptions {
  std::string model;
  std::string tokenizer = "world";
  std::string prompt;
  std::int64_t max_tokens = 100;
  // The reference pipeline's defaults (rwkv.utils.PIPELINE_ARGS).
  SamplingOptions sampling{.temperature = 1.0,
                           .top_p = 0.85,
                           .top_k = 0,
                           .presence_penalty = 0.2,
                           .frequency_penalty = 0.2,
                           .penalty_decay = 0.996,
                           .banned = {}};
  std::vector<std::string> stops;
  std::uint64_t seed = 0;
  bool seed_given = false;
  std::string backend = "cpu";
  PipelineOptions pipeline;
  std::string mode = "gpt";
  std::string state_in;
  std::string state_out;
};

// The whole of `text` as a number (an optional base for integers).
template <typename T, typename... Base>
bool parse_whole(std::string_view text, T& out, Base... base) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out, base...);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> items;
  for (std::size_t begin = 0;;) {
    std::size_t end = text.find(separator, begin);
    items.push_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return items;
    begin = end + 1;
  }
}

// What a paused generation needs beyond the recurrent state, kept in the state file's
// metadata so that one file resumes it: the last sampled token (printed but not yet fed to the
// model), the random generator's position and the penalty counts. A state written by
// `rwkvc forward` has none of it and starts a fresh sampler.
struct GenerationMetadata {
  std::optional<std::int32_t> pending;
  std::optional<Rng::Words> rng;
  std::map<std::int32_t, double> counts;

  static constexpr const char* kPending = "rwkvc.generate.pending_token";
  static constexpr const char* kRng = "rwkvc.generate.rng";
  static constexpr const char* kCounts = "rwkvc.generate.counts";

  std::map<std::string, std::string> to_metadata() const {
    std::map<std::string, std::string> m;
    m[kPending] = pending ? fmt::format("{}", *pending) : "";
    m[kRng] = fmt::format("{:016x}", fmt::join(*rng, ","));
    std::vector<std::string> items;
    for (const auto& [id, count] : counts) items.push_back(fmt::format("{}:{}", id, count));  // shortest exact text
    m[kCounts] = fmt::format("{}", fmt::join(items, ","));
    return m;
  }

  static GenerationMetadata from_metadata(const std::map<std::string, std::string>& m, const std::string& path) {
    GenerationMetadata g;
    auto value = [&](const char* key) -> std::string_view {
      auto it = m.find(key);
      return it == m.end() ? std::string_view() : std::string_view(it->second);
    };
    auto bad = [&](const char* key) {
      return std::invalid_argument(fmt::format("state file '{}': metadata {}='{}' is malformed", path, key, value(key)));
    };
    if (std::string_view text = value(kPending); !text.empty()) {
      std::int32_t id = 0;
      if (!parse_whole(text, id)) throw bad(kPending);
      g.pending = id;
    }
    if (std::string_view text = value(kRng); !text.empty()) {
      std::vector<std::string_view> items = split(text, ',');
      Rng::Words words{};
      if (items.size() != words.size()) throw bad(kRng);
      for (std::size_t i = 0; i < words.size(); ++i)
        if (!parse_whole(items[i], words[i], 16)) throw bad(kRng);
      g.rng = words;
    }
    if (std::string_view text = value(kCounts); !text.empty()) {
      for (std::string_view item : split(text, ',')) {
        std::size_t colon = item.find(':');
        std::int32_t id = 0;
        double count = 0;
        if (colon == std::string_view::npos || !parse_whole(item.substr(0, colon), id) ||
            !parse_whole(item.substr(colon + 1), count))
          throw bad(kCounts);
        g.counts[id] = count;
      }
    }
    return g;
  }

};

// \n, \t and \\ in a stop string given on the command line.
std::string unescape(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == 'n' || text[i + 1] == 't' || text[i + 1] == '\\')) {
      out += text[i + 1] == 'n' ? '\n' : text[i + 1] == 't' ? '\t' : '\\';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Ids the model can produce but the tokenizer has no text for: World's id 0 marks the end of
// a text (the reference stops there); any other is banned.
struct Untextual {
  bool zero_ends_text = false;
  std::vector<std::int32_t> banned;
};

Untextual untextual_ids(const Tokenizer& tokenizer, std::int64_t model_vocab) {
  Untextual u;
  for (std::int32_t id = 0; id < model_vocab; ++id) {
    bool known = static_cast<std::size_t>(id) < tokenizer.vocab_size();
    if (known) {
      try {
        tokenizer.token_bytes(id);
      } catch (const std::invalid_argument&) {
        known = false;
      }
    }
    if (known) continue;
    if (id == 0) u.zero_ends_text = true;
    else u.banned.push_back(id);
  }
  return u;
}

// The sampler, with the generator position and penalty counts of a resumed generation
// (an explicit --seed restarts the generator).
Sampler make_sampler(const GenerateCliOptions& o, const Tokenizer& tokenizer, std::int64_t vocab,
                     const GenerationMetadata& resumed, Untextual& untextual) {
  for (std::int32_t id : o.sampling.banned)
    if (id < 0 || id >= vocab) throw std::invalid_argument(fmt::format("--ban {}: the model's token ids are 0..{}", id, vocab - 1));
  for (const auto& [id, count] : resumed.counts)
    if (id < 0 || id >= vocab)
      throw std::invalid_argument(fmt::format("state '{}' counts token {}, outside the model's vocabulary of {}", o.state_in, id, vocab));
  SamplingOptions sampling = o.sampling;
  untextual = untextual_ids(tokenizer, vocab);
  sampling.banned.insert(sampling.banned.end(), untextual.banned.begin(), untextual.banned.end());
  Sampler sampler(sampling, o.seed);
  if (resumed.rng && !o.seed_given) sampler.set_rng(Rng::from_words(*resumed.rng));
  sampler.set_occurrences(resumed.counts);
  return sampler;
}

void save_generation(const std::string& path, const State& state, GenerationMetadata paused) {
  save_state(path, state.to_host());
  // save_state writes the state's own metadata only; ours joins it in the same file.
  SafetensorsFile file = read_safetensors(path);
  for (auto& [key, value] : paused.to_metadata()) file.metadata[key] = value;
  write_safetensors(path, file.tensors, file.metadata);
}

void run_generate(const GenerateCliOptions& o) {
  FeedMode prompt_mode = FeedMode::parse(o.mode);
  if (o.max_tokens < 0) throw std::invalid_argument(fmt::format("--max-tokens {} is negative", o.max_tokens));
  std::vector<std::string> stops;
  for (const std::string& s : o.stops) stops.push_back(unescape(s));
  StopStrings stop(std::move(stops));

  Model model = load_model_or_default(o.model);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(o.tokenizer);
  const std::int64_t vocab = model.config.vocab;
  if (tokenizer->vocab_size() > static_cast<std::size_t>(vocab))
    throw std::invalid_argument(fmt::format(
        "tokenizer '{}' has token ids up to {}, but the model {} has a vocabulary of {}: they do not belong together",
        o.tokenizer, tokenizer->vocab_size() - 1, describe(model), vocab));
  auto exe = compile_model(model, o.backend, o.pipeline);

  State state = exe->new_state();
  GenerationMetadata resumed;
  if (!o.state_in.empty()) {
    HostState host = load_state(o.state_in);
    try {
      state = exe->import_state(host);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("state '{}' does not fit this model: {}", o.state_in, e.what()));
    }
    resumed = GenerationMetadata::from_metadata(read_safetensors(o.state_in).metadata, o.state_in);
  }
  Untextual untextual;
  Sampler sampler = make_sampler(o, *tokenizer, vocab, resumed, untextual);

  std::vector<std::int32_t> prompt;
  if (resumed.pending) prompt.push_back(*resumed.pending);
  std::vector<std::int32_t> encoded = tokenizer->encode(o.prompt);
  prompt.insert(prompt.end(), encoded.begin(), encoded.end());
  if (prompt.empty())
    throw std::invalid_argument("nothing to continue: give --prompt, or --state-in with a state saved by generate");

  auto start = std::chrono::steady_clock::now();
  HostTensor logits = feed(*exe, prompt, state, prompt_mode);
  const double prompt_seconds = seconds_since(start);

  // Every sampled token is printed at once but fed to the model only when another is wanted,
  // so the last one stays pending: it is what a resumed generation feeds first.
  StreamingDecoder decoder(*tokenizer);
  GenerationMetadata paused;
  std::int64_t generated = 0;
  start = std::chrono::steady_clock::now();
  while (generated < o.max_tokens) {
    std::int32_t token = sampler.sample(logits.f32());
    if (token == 0 && untextual.zero_ends_text) break;
    sampler.accept(token, occurrence_weight(tokenizer->token_bytes(token)));
    ++generated;
    print(stop.push(decoder.push(token)));
    if (stop.stopped() || generated == o.max_tokens) {
      paused.pending = token;
      break;
    }
    logits = exe->forward(std::span(&token, 1), state);
  }
  const double generation_seconds = seconds_since(start);
  print(stop.push(decoder.finish()) + stop.finish());

  if (!o.state_out.empty()) {
    paused.rng = sampler.rng().words();
    paused.counts = sampler.occurrences();
    save_generation(o.state_out, state, paused);
  }
  fmt::print(stderr, "\n[prompt: {} tokens, {:.1f} tokens/s; generated: {} tokens, {:.1f} tokens/s]\n", prompt.size(),
             static_cast<double>(prompt.size()) / std::max(prompt_seconds, 1e-9), generated,
             static_cast<double>(generated) / std::max(generation_seconds, 1e-9));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateCliOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, printing the text as it is made");
  cmd->add_option("--model", o->model, "Model file (default: the built-in default model)");
  cmd->add_option("--tokenizer", o->tokenizer, "world, a World vocabulary (.txt) or a tokenizers JSON file (.json)")
      ->capture_default_str();
  cmd->add_option("--prompt", o->prompt, "Text to continue");
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", o->sampling.temperature, "0: greedy")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Keep the most likely tokens whose probability reaches this")
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Keep at most this many tokens (0: no limit)")->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Subtracted from a token's logit once it occurred")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Subtracted per (decayed) occurrence")
      ->capture_default_str();
  cmd->add_option("--penalty-decay", o->sampling.penalty_decay, "Occurrence counts are multiplied by this every token")
      ->capture_default_str();
  cmd->add_option("--ban", o->sampling.banned, "Token ids never to generate: 0,5,7")->delimiter(',');
  cmd->add_option("--stop", o->stops, "Stop when the text contains this (not printed; \\n and \\t understood); repeatable");
  CLI::Option* seed = cmd->add_option("--seed", o->seed, "Random seed (default 0, or the position saved in --state-in)");
  cmd->add_option("--backend", o->backend, "Backend")->capture_default_str();
  add_pipeline_options(*cmd, o->pipeline);
  o->pipeline.report_to = stderr;  // stdout carries the generated text
  cmd->add_option("--mode", o->mode, "How the prompt is fed: gpt, rnn or chunk:N")->capture_default_str();
  cmd->add_option("--state-in", o->state_in, "Resume from a saved state");
  cmd->add_option("--state-out", o->state_out, "Save the state, sampler included, to resume later");
  cmd->callback([o, seed] {
    o->seed_given = seed->count() > 0;
    run_generate(*o);
  });
}

}  // namespace rwkvc::cli
