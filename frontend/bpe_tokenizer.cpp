#include "frontend/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include "frontend/utf8.h"

namespace rwkvc {

namespace {

using nlohmann::json;

// GPT-2's pre-tokenizer: contractions, letter runs, number runs and other-symbol runs (each
// taking one leading space), and whitespace, leaving a space that precedes a word to the word:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s spelled out as the library's regex engine (Oniguruma) has it: tab to carriage return,
// NEL and the separators \p{Z}. PCRE2's \s also takes U+180E, no space since Unicode 6.3.
#define RWKVC_SPACE R"(\t-\r\x{85}\p{Z})"
constexpr const char* kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" RWKVC_SPACE R"(\p{L}\p{N}]+)"
    R"(|[)" RWKVC_SPACE R"(]+(?![^)" RWKVC_SPACE R"(])|[)" RWKVC_SPACE R"(]+)";
#undef RWKVC_SPACE

// GPT-2's printable stand-ins for bytes: printable Latin-1 bytes stand for themselves, the other
// 68 take the code points 256, 257, ... in byte order.
std::array<char32_t, 256> byte_level_chars() {
  std::array<char32_t, 256> chars{};
  char32_t next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    chars[b] = printable ? b : next++;
  }
  return chars;
}

// A piece of text to tokenize, or an added token found in the text.
struct Segment {
  std::string_view text;
  std::int32_t added_id = -1;
};

// Added tokens cut out of text before pre-tokenization, leftmost match first and the longest
// of those starting there.
class AddedTokenMatcher {
 public:
  void add(std::string content, std::int32_t id) {
    first_bytes_.set(static_cast<unsigned char>(content[0]));
    tokens_.emplace_back(std::move(content), id);
    std::stable_sort(tokens_.begin(), tokens_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }

  template <typename Emit>
  void split(std::string_view text, Emit&& emit) const {
    std::size_t start = 0;
    for (std::size_t pos = 0; pos < text.size();) {
      const auto* found = first_bytes_.test(static_cast<unsigned char>(text[pos])) ? match_at(text.substr(pos)) : nullptr;
      if (found == nullptr) {
        ++pos;
        continue;
      }
      if (pos > start) emit(Segment{text.substr(start, pos - start)});
      emit(Segment{text.substr(pos, found->first.size()), found->second});
      pos += found->first.size();
      start = pos;
    }
    if (start < text.size()) emit(Segment{text.substr(start)});
  }

 private:
  const std::pair<std::string, std::int32_t>* match_at(std::string_view text) const {
    for (const auto& token : tokens_)
      if (text.starts_with(token.first)) return &token;
    return nullptr;
  }

  std::vector<std::pair<std::string, std::int32_t>> tokens_;  // longest first
  std::bitset<256> first_bytes_;
};

struct Pcre2CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct Pcre2MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

std::string nfc(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT32_MAX)) throw std::invalid_argument("text too long to normalize (2 GiB or more)");
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFCInstance(status);
  icu::StringPiece piece(text.data(), static_cast<std::int32_t>(text.size()));
  if (U_SUCCESS(status) && normalizer->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(text);
  std::string out;
  icu::StringByteSink<std::string> sink(&out, static_cast<std::int32_t>(text.size()));
  status = U_ZERO_ERROR;
  normalizer->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) throw std::runtime_error(fmt::format("NFC normalization failed: {}", u_errorName(status)));
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("cannot open tokenizer '{}': {}", path, std::strerror(errno)));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) throw std::invalid_argument(fmt::format("cannot read tokenizer '{}'", path));
  return std::move(contents).str();
}

}  // namespace

struct BpeTokenizer::Impl {
  struct MergeRule {
    std::int32_t rank;
    std::int32_t merged;
  };
  static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32 | static_cast<std::uint32_t>(right);
  }

  std::string name;
  std::vector<std::string> bytes_by_id;
  std::vector<bool> has_id;
  std::array<std::int32_t, 256> byte_symbol{};  // the base symbol of each byte
  std::unordered_map<std::uint64_t, MergeRule> merges;
  AddedTokenMatcher raw_added, normalized_added;
  bool normalize_nfc = false;
  bool add_prefix_space = false;
  std::unique_ptr<pcre2_code, Pcre2CodeDeleter> pattern;  // null: no regex split

  // Pieces recur constantly in text (" the", " and"), so their merges are worth remembering.
  static constexpr std::size_t kCacheEntries = 1 << 16, kCachedPieceBytes = 64;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache;

  void encode_piece(std::string_view piece, std::vector<std::int32_t>& out) const;
  std::vector<std::int32_t> merge(std::string_view piece) const;
  void pre_tokenize(std::string_view text, std::vector<std::int32_t>& out) const;
};

std::vector<std::int32_t> BpeTokenizer::Impl::merge(std::string_view piece) const {
  struct Symbol {
    std::int32_t id;
    std::int32_t prev, next;  // neighbours still alive, -1 at the ends
  };
  struct Candidate {
    std::int32_t rank, pos;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const auto n = static_cast<std::int32_t>(piece.size());
  std::vector<Symbol> symbols(static_cast<std::size_t>(n));
  for (std::int32_t i = 0; i < n; ++i)
    symbols[static_cast<std::size_t>(i)] = {byte_symbol[static_cast<unsigned char>(piece[static_cast<std::size_t>(i)])],
                                            i - 1, i + 1 < n ? i + 1 : -1};
  auto at = [&](std::int32_t i) -> Symbol& { return symbols[static_cast<std::size_t>(i)]; };

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](std::int32_t left) {
    if (left < 0 || at(left).next < 0) return;
    auto rule = merges.find(pair_key(at(left).id, at(at(left).next).id));
    if (rule != merges.end()) queue.push({rule->second.rank, left});
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) consider(i);

  // Lowest rank first, leftmost on ties; an entry whose pair has changed since is stale.
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Symbol& left = at(c.pos);
    if (left.id < 0 || left.next < 0) continue;
    auto rule = merges.find(pair_key(left.id, at(left.next).id));
    if (rule == merges.end() || rule->second.rank != c.rank) continue;
    Symbol& right = at(left.next);
    left.id = rule->second.merged;
    left.next = right.next;
    if (right.next >= 0) at(right.next).prev = c.pos;
    right.id = -1;
    consider(left.prev);
    consider(c.pos);
  }

  std::vector<std::int32_t> ids;
  for (std::int32_t i = n > 0 ? 0 : -1; i >= 0; i = at(i).next) ids.push_back(at(i).id);
  return ids;
}

void BpeTokenizer::Impl::encode_piece(std::string_view piece, std::vector<std::int32_t>& out) const {
  const bool cacheable = piece.size() <= kCachedPieceBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (auto hit = cache.find(std::string(piece)); hit != cache.end()) {
      out.insert(out.end(), hit->second.begin(), hit->second.end());
      return;
    }
  }
  std::vector<std::int32_t> ids = merge(piece);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (cache.size() >= kCacheEntries) cache.clear();
    cache.emplace(piece, std::move(ids));
  }
}

void BpeTokenizer::Impl::pre_tokenize(std::string_view text, std::vector<std::int32_t>& out) const {
  std::string prefixed;
  if (add_prefix_space && !text.starts_with(' ')) {
    prefixed.reserve(text.size() + 1);
    prefixed.append(1, ' ').append(text);
    text = prefixed;
  }
  if (!pattern) {
    encode_piece(text, out);
    return;
  }
  std::unique_ptr<pcre2_match_data, Pcre2MatchDataDeleter> match(pcre2_match_data_create_from_pattern(pattern.get(), nullptr));
  if (!match) throw std::bad_alloc();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t pos = 0;
  while (pos < text.size()) {
    // The text was checked to be UTF-8 on entry, so PCRE2 need not check it again for every piece.
    int rc = pcre2_match(pattern.get(), subject, text.size(), pos, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw std::runtime_error(fmt::format("tokenizer '{}': pre-tokenizer regex failed: {}", name, pcre2_message(rc)));
    const PCRE2_SIZE* range = pcre2_get_ovector_pointer(match.get());
    // Text between matches is a piece of its own (the library's "isolated" split); GPT-2's
    // pattern matches every character, so this does not happen with it.
    if (range[0] > pos) encode_piece(text.substr(pos, range[0] - pos), out);
    if (range[1] == range[0]) {  // an empty match: step over one character
      pos = range[0] + std::max<std::size_t>(1, utf8::scan_char(text.substr(range[0])).length);
      continue;
    }
    encode_piece(text.substr(range[0], range[1] - range[0]), out);
    pos = range[1];
  }
  if (pos < text.size()) encode_piece(text.substr(pos), out);
}

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text) const {
  if (std::size_t bad = utf8::first_invalid_byte(text); bad != text.size())
    throw std::invalid_argument(fmt::format("tokenizer '{}' needs UTF-8 text: byte 0x{:02x} at offset {} is not valid UTF-8",
                                            impl_->name, static_cast<unsigned char>(text[bad]), bad));
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 4 + 1);
  impl_->raw_added.split(text, [&](Segment raw) {
    if (raw.added_id >= 0) return ids.push_back(raw.added_id);
    std::string normalized = impl_->normalize_nfc ? nfc(raw.text) : std::string(raw.text);
    impl_->normalized_added.split(normalized, [&](Segment piece) {
      if (piece.added_id >= 0) return ids.push_back(piece.added_id);
      impl_->pre_tokenize(piece.text, ids);
    });
  });
  return ids;
}

std::string BpeTokenizer::token_bytes(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->has_id.size() || !impl_->has_id[static_cast<std::size_t>(id)])
    throw std::invalid_argument(fmt::format("token id {} is not in tokenizer '{}'", id, impl_->name));
  return impl_->bytes_by_id[static_cast<std::size_t>(id)];
}

std::size_t BpeTokenizer::vocab_size() const { return impl_->has_id.size(); }

BpeTokenizer BpeTokenizer::load(const std::string& path) { return parse(read_file(path), path); }

// ---- reading the JSON -------------------------------------------------------------------------

namespace {

constexpr std::int32_t kMaxId = (1 << 22) - 1;  // far beyond real vocabularies; bounds the tables

class JsonReader {
 public:
  explicit JsonReader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& what) const { throw std::invalid_argument(fmt::format("{}: {}", name_, what)); }

  const json& member(const json& object, const std::string& path, const char* key, json::value_t type) const {
    auto it = object.find(key);
    if (it == object.end()) fail(fmt::format("{}{} is missing", path, key));
    if (it->type() != type && !(type == json::value_t::number_unsigned && it->is_number_integer()))
      fail(fmt::format("{}{} is a JSON {} where {} is expected", path, key, it->type_name(), json(type).type_name()));
    return *it;
  }

  // An optional member: `fallback` when absent or null.
  template <typename T>
  T optional(const json& object, const std::string& path, const char* key, T fallback) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    try {
      return it->get<T>();
    } catch (const json::exception&) {
      fail(fmt::format("{}{} has the wrong type ({})", path, key, it->type_name()));
    }
  }

  std::int32_t id(const json& value, const std::string& where) const {
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > kMaxId)
      fail(fmt::format("{} is not a token id (an integer from 0 to {})", where, kMaxId));
    return static_cast<std::int32_t>(value.get<std::int64_t>());
  }

  void unsupported(const std::string& what) const { fail(fmt::format("{} (not supported by this tokenizer)", what)); }

 private:
  std::string name_;
};

}  // namespace

BpeTokenizer BpeTokenizer::parse(std::string_view json_text, const std::string& name) {
  JsonReader reader(name);
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    reader.fail(fmt::format("not valid JSON: {}", e.what()));
  }
  if (!doc.is_object()) reader.fail("the top level is not a JSON object");

  auto impl = std::make_unique<Impl>();
  impl->name = name;

  // The pipeline's stages: only what byte-level BPE files use is accepted.
  const json& model = reader.member(doc, "", "model", json::value_t::object);
  if (auto type = reader.optional<std::string>(model, "model.", "type", "BPE"); type != "BPE")
    reader.unsupported(fmt::format("model.type is \"{}\"; only BPE is read", type));
  if (reader.optional<double>(model, "model.", "dropout", 0.0) != 0.0) reader.unsupported("model.dropout is set");
  if (!reader.optional<std::string>(model, "model.", "continuing_subword_prefix", "").empty() ||
      !reader.optional<std::string>(model, "model.", "end_of_word_suffix", "").empty())
    reader.unsupported("model has a subword prefix or suffix");
  if (reader.optional<bool>(model, "model.", "byte_fallback", false)) reader.unsupported("model.byte_fallback is true");
  if (reader.optional<bool>(model, "model.", "ignore_merges", false)) reader.unsupported("model.ignore_merges is true");

  if (auto it = doc.find("normalizer"); it != doc.end() && !it->is_null()) {
    auto type = reader.optional<std::string>(*it, "normalizer.", "type", "");
    if (type != "NFC") reader.unsupported(fmt::format("normalizer \"{}\" (only NFC or none)", type));
    impl->normalize_nfc = true;
  }
  const json& pre = reader.member(doc, "", "pre_tokenizer", json::value_t::object);
  if (auto type = reader.optional<std::string>(pre, "pre_tokenizer.", "type", ""); type != "ByteLevel")
    reader.unsupported(fmt::format("pre_tokenizer \"{}\" (only ByteLevel)", type));
  impl->add_prefix_space = reader.optional<bool>(pre, "pre_tokenizer.", "add_prefix_space", false);
  if (reader.optional<bool>(pre, "pre_tokenizer.", "use_regex", true)) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    impl->pattern.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kByteLevelPattern), PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr));
    if (!impl->pattern) throw std::logic_error(fmt::format("the ByteLevel regex does not compile: {}", pcre2_message(error)));
    pcre2_jit_compile(impl->pattern.get(), PCRE2_JIT_COMPLETE);  // optional: matching works without it
  }
  if (auto it = doc.find("decoder"); it != doc.end() && !it->is_null()) {
    if (auto type = reader.optional<std::string>(*it, "decoder.", "type", ""); type != "ByteLevel")
      reader.unsupported(fmt::format("decoder \"{}\" (only ByteLevel)", type));
  }

  // The vocabulary: token strings are byte-level text, each character standing for one byte.
  const std::array<char32_t, 256> byte_chars = byte_level_chars();
  std::array<std::int16_t, 512> byte_of_char;
  byte_of_char.fill(-1);
  for (unsigned b = 0; b < 256; ++b) byte_of_char[byte_chars[b]] = static_cast<std::int16_t>(b);
  auto token_to_bytes = [&](const std::string& token) {
    std::string bytes;
    for (std::size_t pos = 0; pos < token.size();) {
      utf8::CharScan c = utf8::scan_char(std::string_view(token).substr(pos));
      if (c.status != utf8::CharStatus::complete || c.code_point >= byte_of_char.size() || byte_of_char[c.code_point] < 0)
        return token;  // not byte-level text: the library's decoder then keeps the token as it is
      bytes += static_cast<char>(byte_of_char[c.code_point]);
      pos += c.length;
    }
    return bytes;
  };

  const json& vocab = reader.member(model, "model.", "vocab", json::value_t::object);
  std::unordered_map<std::string, std::int32_t> id_of;
  id_of.reserve(vocab.size());
  std::vector<std::pair<std::int32_t, const std::string*>> entries;
  std::int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    std::int32_t id = reader.id(it.value(), fmt::format("model.vocab[\"{}\"]", it.key()));
    id_of.emplace(it.key(), id);
    entries.emplace_back(id, &it.key());
    max_id = std::max(max_id, id);
  }
  if (entries.empty()) reader.fail("model.vocab is empty");

  struct Added {
    std::int32_t id;
    std::string content;
    bool normalized;
  };
  std::vector<Added> added;
  if (auto it = doc.find("added_tokens"); it != doc.end() && !it->is_null()) {
    if (!it->is_array()) reader.fail("added_tokens is not an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& token = (*it)[i];
      std::string path = fmt::format("added_tokens[{}].", i);
      if (!token.is_object()) reader.fail(fmt::format("added_tokens[{}] is not an object", i));
      Added a;
      a.id = reader.id(reader.member(token, path, "id", json::value_t::number_unsigned), path + "id");
      a.content = reader.member(token, path, "content", json::value_t::string).get<std::string>();
      if (a.content.empty()) reader.fail(path + "content is empty");
      a.normalized = reader.optional<bool>(token, path, "normalized", true);
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (reader.optional<bool>(token, path, flag, false)) reader.unsupported(fmt::format("{}{} is true", path, flag));
      max_id = std::max(max_id, a.id);
      added.push_back(std::move(a));
    }
  }

  impl->bytes_by_id.resize(static_cast<std::size_t>(max_id) + 1);
  impl->has_id.resize(static_cast<std::size_t>(max_id) + 1, false);
  for (const auto& [id, token] : entries) {
    if (impl->has_id[static_cast<std::size_t>(id)]) reader.fail(fmt::format("model.vocab gives id {} to two tokens", id));
    impl->has_id[static_cast<std::size_t>(id)] = true;
    impl->bytes_by_id[static_cast<std::size_t>(id)] = token_to_bytes(*token);
  }
  // An added token stands for its text, as the library decodes it (ahead of the model's vocabulary).
  for (const Added& a : added) {
    impl->has_id[static_cast<std::size_t>(a.id)] = true;
    impl->bytes_by_id[static_cast<std::size_t>(a.id)] = a.content;
    // The library matches a normalized token in normalized text, so its own text is normalized too.
    if (a.normalized) {
      impl->normalized_added.add(impl->normalize_nfc ? nfc(a.content) : a.content, a.id);
    } else {
      impl->raw_added.add(a.content, a.id);
    }
  }

  // Every byte that UTF-8 text can contain needs its symbol (0xC0, 0xC1 and 0xF5 up never occur,
  // and GPT-2's vocabularies lack them).
  for (unsigned b = 0; b < 256; ++b) {
    std::string symbol;
    utf8::append(symbol, byte_chars[b]);
    auto it = id_of.find(symbol);
    const bool occurs_in_utf8 = b != 0xC0 && b != 0xC1 && b < 0xF5;
    if (it == id_of.end() && occurs_in_utf8)
      reader.fail(fmt::format("model.vocab lacks \"{}\", the symbol of byte 0x{:02x}, which UTF-8 text can contain", symbol, b));
    impl->byte_symbol[b] = it == id_of.end() ? -1 : it->second;
  }

  // Merges, in rank order: "left right" strings (or [left, right] pairs in newer files).
  const json& merges = reader.member(model, "model.", "merges", json::value_t::array);
  impl->merges.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {
      const std::string& text = m.get_ref<const std::string&>();
      std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
        reader.fail(fmt::format("model.merges[{}] \"{}\" is not two symbols separated by one space", rank, text));
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      reader.fail(fmt::format("model.merges[{}] is neither \"left right\" nor [\"left\", \"right\"]", rank));
    }
    auto id = [&](const std::string& symbol) {
      auto it = id_of.find(symbol);
      if (it == id_of.end())
        reader.fail(fmt::format("model.merges[{}] (\"{} {}\"): \"{}\" is not in model.vocab", rank, left, right, symbol));
      return it->second;
    };
    std::int32_t l = id(left), r = id(right), merged = id(left + right);
    if (rank > static_cast<std::size_t>(INT32_MAX)) reader.fail("model.merges has too many entries");
    // As in the library, a pair listed twice keeps its later rank.
    impl->merges[Impl::pair_key(l, r)] = {static_cast<std::int32_t>(rank), merged};
  }
  return BpeTokenizer(std::move(impl));
}

}  // namespace rwkvc
