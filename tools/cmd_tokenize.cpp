// rwkvc tokenize / detokenize: text to token ids and back, with the World vocabulary by default.
#include <climits>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "frontend/bpe_tokenizer.h"
#include "frontend/world_tokenizer.h"
#include "tools/commands.h"

namespace rwkvc::cli {

namespace {

struct TokenizerChoice {
  std::string vocab;      // a World vocabulary file
  std::string tokenizer;  // a tokenizers JSON file
};

std::unique_ptr<Tokenizer> open_tokenizer(const TokenizerChoice& choice) {
  if (!choice.vocab.empty()) return std::make_unique<WorldTokenizer>(WorldTokenizer::load(choice.vocab));
  if (!choice.tokenizer.empty()) return std::make_unique<BpeTokenizer>(BpeTokenizer::load(choice.tokenizer));
  return load_tokenizer("world");
}

void add_tokenizer_options(CLI::App& cmd, TokenizerChoice& choice) {
  CLI::Option* vocab = cmd.add_option("--vocab", choice.vocab, "World vocabulary file (default: the RWKV World vocabulary)");
  CLI::Option* json = cmd.add_option("--tokenizer", choice.tokenizer, "Hugging Face tokenizers JSON file (byte-level BPE)");
  vocab->excludes(json);
}

// "1,2,3" or "1 2 3" (what `rwkvc tokenize` prints) -> {1, 2, 3}
std::vector<std::int32_t> parse_ids(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t pos = 0;
  auto separator = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n'; };
  while (pos < text.size()) {
    if (separator(text[pos])) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    while (end < text.size() && !separator(text[end])) ++end;
    std::string item = text.substr(pos, end - pos);
    std::size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || id < 0 || id > INT32_MAX)
      throw std::invalid_argument(fmt::format("'{}' (item {} of --tokens) is not a token id", item, ids.size() + 1));
    ids.push_back(static_cast<std::int32_t>(id));
    pos = end;
  }
  return ids;
}

void write_stdout(const std::string& bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) throw std::runtime_error("cannot write to stdout");
}

}  // namespace

void add_tokenize_commands(CLI::App& app) {
  auto choice = std::make_shared<TokenizerChoice>();
  auto text = std::make_shared<std::string>();
  CLI::App* tokenize = app.add_subcommand("tokenize", "Print the token ids of a text, separated by spaces");
  add_tokenizer_options(*tokenize, *choice);
  tokenize->add_option("--text", *text, "The text to tokenize")->required();
  tokenize->callback([choice, text] {
    std::string line;
    for (std::int32_t id : open_tokenizer(*choice)->encode(*text)) line += fmt::format("{}{}", line.empty() ? "" : " ", id);
    write_stdout(line + "\n");
  });

  auto detok_choice = std::make_shared<TokenizerChoice>();
  auto tokens = std::make_shared<std::string>();
  CLI::App* detokenize = app.add_subcommand("detokenize", "Print the text of token ids (the bytes as they are)");
  add_tokenizer_options(*detokenize, *detok_choice);
  detokenize->add_option("--tokens", *tokens, "Token ids: 1,2,3 or \"1 2 3\"")->required();
  detokenize->callback([detok_choice, tokens] {
    std::vector<std::int32_t> ids = parse_ids(*tokens);
    write_stdout(open_tokenizer(*detok_choice)->decode(ids) + "\n");
  });
}

}  // namespace rwkvc::cli
