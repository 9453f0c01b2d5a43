#include "frontend/tokenizer.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "frontend/bpe_tokenizer.h"
#include "frontend/utf8.h"
#include "frontend/world_tokenizer.h"

#ifndef RWKVC_SHARED_DATA
#error "RWKVC_SHARED_DATA (the shared data folder) must be defined by the build"
#endif

namespace rwkvc {

namespace {

constexpr const char* kWorldVocabulary = "rwkv_vocab_v20230424.txt";

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string Tokenizer::decode(std::span<const std::int32_t> tokens) const {
  std::string text;
  for (std::int32_t id : tokens) text += token_bytes(id);
  return text;
}

std::string default_data_dir() {
  const char* env = std::getenv("RWKVC_DATA");
  if (env != nullptr && *env != '\0') return env;
  return std::filesystem::path(RWKVC_SHARED_DATA).lexically_normal().string();  // no "main/../" in messages
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec == "world") {
    std::string path = (std::filesystem::path(default_data_dir()) / kWorldVocabulary).string();
    return std::make_unique<WorldTokenizer>(WorldTokenizer::load(path));
  }
  if (ends_with(spec, ".json")) return std::make_unique<BpeTokenizer>(BpeTokenizer::load(spec));
  if (ends_with(spec, ".txt")) return std::make_unique<WorldTokenizer>(WorldTokenizer::load(spec));
  throw std::invalid_argument(fmt::format(
      "tokenizer '{}' is neither \"world\", a World vocabulary (.txt) nor a tokenizers JSON file (.json)", spec));
}

std::string StreamingDecoder::push(std::int32_t token) {
  pending_ += tokenizer_.token_bytes(token);
  // Hold back only a character that can still be completed; bytes that can never form one are
  // passed through as they are rather than kept forever.
  std::size_t keep = utf8::incomplete_tail_length(pending_);
  std::string ready = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string StreamingDecoder::finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace rwkvc
