#include "frontend/world_tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>

#include "frontend/utf8.h"

namespace rwkvc {

namespace {

// What is wrong with one line; the caller adds the file and line number.
struct LineError {
  std::string what;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One `id repr length` line. Literals follow Python's grammar as far as repr() uses it:
// b'...' or '...' or "...", escapes \\ \' \" \n \t \r \xHH, and in str literals \uHHHH and
// \UHHHHHHHH. In a str literal \xHH is the code point U+00HH (two UTF-8 bytes from 0x80 on);
// in a bytes literal it is the byte itself.
class LineParser {
 public:
  explicit LineParser(std::string_view line) : line_(line) {}

  struct Entry {
    std::int32_t id;
    std::string bytes;
  };

  Entry parse() {
    Entry entry;
    entry.id = static_cast<std::int32_t>(number("a token id", WorldTokenizer::kMaxId));
    expect(' ', "a space after the token id");
    entry.bytes = literal();
    expect(' ', "a space and the byte length after the token literal");
    std::int64_t length = number("the byte length", INT32_MAX);
    if (pos_ != line_.size())
      throw LineError{fmt::format("unexpected '{}' after the byte length (column {})", line_.substr(pos_, 10), pos_ + 1)};
    if (entry.bytes.empty()) throw LineError{fmt::format("token {} is empty", entry.id)};
    if (static_cast<std::size_t>(length) != entry.bytes.size())
      throw LineError{fmt::format("token {}: the literal stands for {} bytes but the line says {}", entry.id,
                                  entry.bytes.size(), length)};
    return entry;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw LineError{fmt::format("{} (column {})", what, pos_ + 1)};
  }

  void expect(char c, const char* what) {
    if (pos_ >= line_.size() || line_[pos_] != c) fail(fmt::format("expected {}", what));
    ++pos_;
  }

  std::int64_t number(const char* what, std::int64_t max) {
    std::size_t start = pos_;
    std::int64_t value = 0;
    while (pos_ < line_.size() && line_[pos_] >= '0' && line_[pos_] <= '9') {
      value = value * 10 + (line_[pos_] - '0');
      if (value > max) {
        pos_ = start;
        fail(fmt::format("{} above {}", what, max));
      }
      ++pos_;
    }
    if (pos_ == start) fail(fmt::format("expected {} (decimal digits)", what));
    return value;
  }

  std::uint32_t hex_digits(int count) {
    std::uint32_t value = 0;
    for (int i = 0; i < count; ++i) {
      int digit = pos_ < line_.size() ? hex_value(line_[pos_]) : -1;
      if (digit < 0) fail(fmt::format("an escape needs {} hex digits", count));
      value = value << 4 | static_cast<std::uint32_t>(digit);
      ++pos_;
    }
    return value;
  }

  std::string literal() {
    const bool is_bytes = pos_ < line_.size() && line_[pos_] == 'b';
    if (is_bytes) ++pos_;
    if (pos_ >= line_.size() || (line_[pos_] != '\'' && line_[pos_] != '"'))
      fail("expected a Python str or bytes literal ('...', \"...\" or b'...')");
    const char quote = line_[pos_++];
    std::string out;
    for (;;) {
      if (pos_ >= line_.size()) fail(fmt::format("the literal is not closed by {}", quote));
      const char c = line_[pos_];
      if (c == quote) {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        escape(is_bytes, out);
      } else if (is_bytes) {
        if (static_cast<unsigned char>(c) >= 0x80) fail("a bytes literal may hold only ASCII characters");
        out += c;
        ++pos_;
      } else {
        utf8::CharScan scan = utf8::scan_char(line_.substr(pos_));
        if (scan.status != utf8::CharStatus::complete) fail("the literal is not valid UTF-8");
        out.append(line_.substr(pos_, scan.length));
        pos_ += scan.length;
      }
    }
  }

  void escape(bool is_bytes, std::string& out) {
    const std::size_t start = pos_++;
    if (pos_ >= line_.size()) fail("the line ends inside an escape");
    const char kind = line_[pos_++];
    switch (kind) {
      case '\\': case '\'': case '"': out += kind; return;
      case 'n': out += '\n'; return;
      case 't': out += '\t'; return;
      case 'r': out += '\r'; return;
      case 'x': {
        std::uint32_t value = hex_digits(2);
        if (is_bytes) {
          out += static_cast<char>(value);
        } else {
          utf8::append(out, value);
        }
        return;
      }
      case 'u': case 'U': {
        if (is_bytes) break;
        std::uint32_t value = hex_digits(kind == 'u' ? 4 : 8);
        if (!utf8::is_scalar_value(value)) {
          pos_ = start;
          fail(fmt::format("\\{} escape of U+{:04X}, which is not a Unicode scalar value (UTF-8 cannot encode it)",
                           kind, value));
        }
        utf8::append(out, value);
        return;
      }
      default: break;
    }
    pos_ = start;
    fail(fmt::format("unknown escape \\{} in a {} literal", kind, is_bytes ? "bytes" : "str"));
  }

  std::string_view line_;
  std::size_t pos_ = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(fmt::format("cannot open vocabulary '{}': {}", path, std::strerror(errno)));
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw std::invalid_argument(fmt::format("cannot read vocabulary '{}': not a regular file", path));
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  std::string contents(error ? 0 : size, '\0');
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (error || !in || in.peek() != std::char_traits<char>::eof())
    throw std::invalid_argument(fmt::format("cannot read vocabulary '{}' (did it change while being read?)", path));
  return contents;
}

}  // namespace

WorldTokenizer WorldTokenizer::load(const std::string& path) { return parse(read_file(path), path); }

WorldTokenizer WorldTokenizer::parse(std::string_view contents, const std::string& name) {
  WorldTokenizer tok;
  tok.name_ = name;
  tok.bytes_.reserve(contents.size());

  struct Parsed {
    std::uint32_t begin, length, line;
    std::int32_t id;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(contents.size() / 12 + 1);
  std::int32_t max_id = -1;

  std::size_t pos = 0;
  std::uint32_t line_number = 0;
  while (pos < contents.size()) {
    std::size_t end = contents.find('\n', pos);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    try {
      if (line.empty()) throw LineError{"empty line"};
      LineParser::Entry entry = LineParser(line).parse();
      if (tok.bytes_.size() + entry.bytes.size() > UINT32_MAX) throw LineError{"the vocabulary exceeds 4 GiB"};
      parsed.push_back({static_cast<std::uint32_t>(tok.bytes_.size()), static_cast<std::uint32_t>(entry.bytes.size()),
                        line_number, entry.id});
      tok.bytes_ += entry.bytes;
      max_id = std::max(max_id, entry.id);
    } catch (const LineError& e) {
      throw std::invalid_argument(fmt::format("{}:{}: {}", name, line_number, e.what));
    }
  }
  if (parsed.empty()) throw std::invalid_argument(fmt::format("{}: the vocabulary has no tokens", name));

  // Shared prefixes leave a trie about a third as many nodes as key bytes (RWKV World: 116k
  // nodes for 373k bytes); the tables grow if that guess is short.
  tok.trie_ = ByteTrie(tok.bytes_.size() / 3);
  tok.spans_.assign(static_cast<std::size_t>(max_id) + 1, Span{});
  std::vector<std::uint32_t> line_of_id(tok.spans_.size(), 0);
  for (const Parsed& p : parsed) {
    auto id = static_cast<std::size_t>(p.id);
    if (line_of_id[id] != 0)
      throw std::invalid_argument(
          fmt::format("{}:{}: token id {} is already defined on line {}", name, p.line, p.id, line_of_id[id]));
    line_of_id[id] = p.line;
    tok.spans_[id] = {p.begin, p.length};
    // Like the reference (a dict from bytes to id), a later line with the same bytes wins.
    tok.trie_.insert(std::string_view(tok.bytes_).substr(p.begin, p.length), p.id);
  }
  return tok;
}

std::vector<std::int32_t> WorldTokenizer::encode(std::string_view text) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (std::size_t pos = 0; pos < text.size();) {
    ByteTrie::Match match = trie_.longest_prefix(text.substr(pos));
    if (match.length == 0)
      throw std::invalid_argument(fmt::format("vocabulary '{}' has no token for byte 0x{:02x} (at offset {} of the text)",
                                              name_, static_cast<unsigned char>(text[pos]), pos));
    ids.push_back(match.value);
    pos += match.length;
  }
  return ids;
}

std::string WorldTokenizer::token_bytes(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= spans_.size() || spans_[static_cast<std::size_t>(id)].length == 0)
    throw std::invalid_argument(fmt::format("token id {} is not in vocabulary '{}'", id, name_));
  const Span& span = spans_[static_cast<std::size_t>(id)];
  return bytes_.substr(span.begin, span.length);
}

}  // namespace rwkvc
