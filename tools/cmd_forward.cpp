// rwkvc forward: runs tokens through a model and reports (or saves) the logits and the state.
// With --text it streams a document of any length through the model in constant memory.
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/feed_mode.h"
#include "frontend/graph_builders.h"
#include "frontend/npy.h"
#include "frontend/state_file.h"
#include "frontend/tokenizer.h"
#include "frontend/world_tokenizer.h"
#include "tools/commands.h"
#include "tools/model_source.h"
#include "tools/pipeline_options.h"

namespace rwkvc::cli {

namespace {

struct ForwardCliOptions {
  std::string model;
  std::string tokens;
  std::string text;
  std::string tokenizer = "world";
  std::int64_t chunk = 1024;
  std::size_t piece_bytes = 1 << 16;
  std::string backend = "cpu";
  std::string mode = "gpt";
  bool all_logits = false;
  std::string save_logits;
  std::string state_in;
  std::string save_state;
  PipelineOptions pipeline;
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

State initial_state(const Executable& exe, const std::string& state_in) {
  if (state_in.empty()) return exe.new_state();
  HostState host = load_state(state_in);
  try {
    return exe.import_state(host);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("state '{}' does not fit this model: {}", state_in, e.what()));
  }
}

void report(const ForwardCliOptions& o, const Model& model, const HostTensor& logits, const State& state) {
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

void run_forward(const ForwardCliOptions& o) {
  std::vector<std::int32_t> tokens = parse_token_list(o.tokens);
  FeedMode mode = FeedMode::parse(o.mode);
  Model model = load_model_or_default(o.model);
  auto exe = compile_model(model, o.backend, o.pipeline);
  State state = initial_state(*exe, o.state_in);
  HostTensor logits = feed(*exe, tokens, state, mode, o.all_logits);

  fmt::print("model: {}\n", describe(model));
  fmt::print("backend: {}, mode: {}, {} tokens\n", o.backend, mode.name(), tokens.size());
  report(o, model, logits, state);
}

// The tokens of a text file, read a piece at a time so that memory stays the same however long
// the file. The last tokens of a piece may change once more text follows (a longer match, a
// longer word), so only tokens no later byte can change are handed out; the rest of the text is
// carried into the next piece.
class TextFileTokens {
 public:
  TextFileTokens(const std::string& path, const Tokenizer& tokenizer, std::size_t piece_bytes)
      : path_(path), in_(path, std::ios::binary), tokenizer_(tokenizer), piece_bytes_(std::max<std::size_t>(piece_bytes, 1)) {
    if (!in_) throw std::invalid_argument(fmt::format("cannot open text '{}': {}", path, std::strerror(errno)));
    // Greedy longest match decides a token from at most the longest token's bytes ahead.
    if (dynamic_cast<const WorldTokenizer*>(&tokenizer) != nullptr) lookahead_ = longest_token(tokenizer);
  }

  // The next final tokens; empty once the file is done.
  std::vector<std::int32_t> next() {
    for (;;) {
      const bool last = read_piece();
      if (text_.empty()) return {};
      std::vector<std::int32_t> tokens = last ? encode_all() : lookahead_ > 0 ? encode_settled_matches() : encode_settled_lines();
      if (!tokens.empty() || last) return tokens;
    }
  }

  // True once text had to be cut where the tokenizer might have joined it (a huge line for BPE).
  bool cut_blindly() const { return cut_blindly_; }

 private:
  static std::size_t longest_token(const Tokenizer& tokenizer) {
    std::size_t longest = 1;
    for (std::size_t id = 0; id < tokenizer.vocab_size(); ++id) {
      try {
        longest = std::max(longest, tokenizer.token_bytes(static_cast<std::int32_t>(id)).size());
      } catch (const std::invalid_argument&) {
        // ids without a token (World has no id 0)
      }
    }
    return longest;
  }

  // Appends the next piece; true when the file has no more.
  bool read_piece() {
    std::size_t old_size = text_.size();
    text_.resize(old_size + piece_bytes_);
    in_.read(text_.data() + old_size, static_cast<std::streamsize>(piece_bytes_));
    text_.resize(old_size + static_cast<std::size_t>(in_.gcount()));
    if (in_.bad()) throw std::invalid_argument(fmt::format("cannot read text '{}': {}", path_, std::strerror(errno)));
    return in_.eof();
  }

  std::vector<std::int32_t> encode_all() {
    std::vector<std::int32_t> tokens = tokenizer_.encode(text_);
    text_.clear();
    return tokens;
  }

  // Greedy matching: a token that starts at least `lookahead_` bytes before the end saw every
  // byte that could have lengthened it.
  std::vector<std::int32_t> encode_settled_matches() {
    std::vector<std::int32_t> tokens = tokenizer_.encode(text_);
    std::size_t settled = 0, offset = 0;
    while (settled < tokens.size() && offset + lookahead_ <= text_.size())
      offset += tokenizer_.token_bytes(tokens[settled++]).size();
    tokens.resize(settled);
    text_.erase(0, offset);
    return tokens;
  }

  // Byte-level BPE splits words apart before merging; a newline followed by a visible ASCII
  // character always ends one word and starts the next, so the text before it is final.
  std::vector<std::int32_t> encode_settled_lines() {
    std::size_t cut = text_.size();
    while (cut > 1 && !(text_[cut - 2] == '\n' && text_[cut - 1] > ' ' && text_[cut - 1] < 0x7f)) --cut;
    if (cut <= 1) {
      if (text_.size() < kMaxCarry) return {};
      cut = text_.size() / 2;
      while (cut > 0 && (static_cast<unsigned char>(text_[cut]) & 0xc0) == 0x80) --cut;  // not inside a character
      cut_blindly_ = true;
    } else {
      --cut;
    }
    std::vector<std::int32_t> tokens = tokenizer_.encode(std::string_view(text_).substr(0, cut));
    text_.erase(0, cut);
    return tokens;
  }

  // A line longer than this is cut anyway, to keep memory bounded.
  static constexpr std::size_t kMaxCarry = 16 << 20;

  std::string path_;
  std::ifstream in_;
  const Tokenizer& tokenizer_;
  std::size_t piece_bytes_;
  std::size_t lookahead_ = 0;  // 0: not a greedy matcher
  std::string text_;
  bool cut_blindly_ = false;
};

double peak_rss_kib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss);  // KiB on Linux
}

void run_forward_text(const ForwardCliOptions& o) {
  if (o.chunk < 1) throw std::invalid_argument(fmt::format("--chunk {} must be at least 1", o.chunk));
  if (o.all_logits) throw std::invalid_argument("--all-logits would keep every position of the text; it does not go with --text");
  Model model = load_model_or_default(o.model);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(o.tokenizer);
  if (tokenizer->vocab_size() > static_cast<std::size_t>(model.config.vocab))
    throw std::invalid_argument(fmt::format(
        "tokenizer '{}' has token ids up to {}, but the model {} has a vocabulary of {}: they do not belong together",
        o.tokenizer, tokenizer->vocab_size() - 1, describe(model), model.config.vocab));
  auto exe = compile_model(model, o.backend, o.pipeline);
  State state = initial_state(*exe, o.state_in);

  const auto chunk = static_cast<std::size_t>(o.chunk);
  auto start = std::chrono::steady_clock::now();
  TextFileTokens text(o.text, *tokenizer, o.piece_bytes);
  std::vector<std::int32_t> waiting;  // fewer than `chunk` after every round
  HostTensor logits;
  std::size_t processed = 0, calls = 0;
  auto run = [&](std::span<const std::int32_t> tokens) {
    logits = exe->forward(tokens, state);
    processed += tokens.size();
    ++calls;
  };
  for (std::vector<std::int32_t> tokens; !(tokens = text.next()).empty();) {
    waiting.insert(waiting.end(), tokens.begin(), tokens.end());
    std::size_t fed = 0;
    for (; waiting.size() - fed >= chunk; fed += chunk) run(std::span(waiting).subspan(fed, chunk));
    waiting.erase(waiting.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(fed));
  }
  if (!waiting.empty()) run(waiting);
  if (processed == 0) throw std::invalid_argument(fmt::format("text '{}' is empty: there is nothing to run", o.text));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  fmt::print("model: {}\n", describe(model));
  fmt::print("backend: {}, text: {}, tokenizer: {}, {} tokens per call\n", o.backend, o.text, o.tokenizer, chunk);
  if (text.cut_blindly())
    fmt::print(stderr, "rwkvc: warning: '{}' has lines over 16 MiB; they were tokenized in parts\n", o.text);
  fmt::print("streamed {} tokens in {} calls, {:.2f} s: {:.0f} tokens/s; peak RSS {:.0f} KiB ({:.1f} MiB)\n", processed,
             calls, seconds, static_cast<double>(processed) / std::max(seconds, 1e-9), peak_rss_kib(),
             peak_rss_kib() / 1024);
  report(o, model, logits, state);
}

}  // namespace

void add_forward_command(CLI::App& app) {
  auto options = std::make_shared<ForwardCliOptions>();
  CLI::App* cmd = app.add_subcommand("forward", "Run tokens, or a text of any length, through a model and report the logits");
  cmd->add_option("--model", options->model, "Model file (default: the built-in default model)");
  CLI::Option* tokens = cmd->add_option("--tokens", options->tokens, "Token ids, comma-separated: 1,2,3");
  CLI::Option* text = cmd->add_option("--text", options->text, "A text file to stream through the model in constant memory")
                          ->excludes(tokens);
  cmd->add_option("--tokenizer", options->tokenizer, "For --text: world, a World vocabulary (.txt) or a tokenizers JSON file")
      ->capture_default_str()
      ->needs(text);
  cmd->add_option("--chunk", options->chunk, "For --text: tokens per call")->capture_default_str()->needs(text);
  cmd->add_option("--read-bytes", options->piece_bytes, "For --text: bytes read at a time")->capture_default_str()->needs(text);
  cmd->add_option("--backend", options->backend, "Backend")->capture_default_str();
  cmd->add_option("--mode", options->mode, "gpt (all at once), rnn (one token per call) or chunk:N")
      ->capture_default_str()
      ->excludes(text);
  cmd->add_flag("--all-logits", options->all_logits, "Keep every position's logits ([T, vocab])");
  cmd->add_option("--save-logits", options->save_logits, "Write the logits to a float32 .npy file");
  cmd->add_option("--state-in", options->state_in, "Start from a saved state");
  cmd->add_option("--save-state", options->save_state, "Save the final state");
  add_pipeline_options(*cmd, options->pipeline);
  cmd->callback([options, tokens, text] {
    if (text->count() > 0) return run_forward_text(*options);
    if (tokens->count() == 0) throw std::invalid_argument("forward needs --tokens or --text");
    run_forward(*options);
  });
}

}  // namespace rwkvc::cli
