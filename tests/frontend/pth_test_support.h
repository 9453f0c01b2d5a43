// Shared by the .pth tests: the committed fixtures, and bytes to build or damage archives and
// pickles with. The zip walking and CRC here are written independently of frontend/zip_archive,
// so a test that edits an archive does not trust the code it tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rwkvc::test {

inline std::string model_fixture(const std::string& name) {
  return std::string(RWKVC_SOURCE_DIR) + "/tests/models/" + name;
}

// CRC-32 of zip, bit by bit as the definition reads.
inline std::uint32_t bitwise_crc32(const std::string& bytes) {
  std::uint32_t crc = 0xffffffff;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

inline void put_le(std::string& bytes, std::size_t at, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i)
    bytes[at + static_cast<std::size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xff);
}
inline void append_le(std::string& bytes, std::uint64_t value, int width) {
  bytes.append(static_cast<std::size_t>(width), '\0');
  put_le(bytes, bytes.size() - static_cast<std::size_t>(width), value, width);
}
inline std::uint64_t get_le(const std::string& bytes, std::size_t at, int width) {
  std::uint64_t value = 0;
  for (int i = width; i-- > 0;)
    value = value << 8 | static_cast<unsigned char>(bytes.at(at + static_cast<std::size_t>(i)));
  return value;
}

// A zip archive of stored entries written field by field (APPNOTE 4.3), optionally with zip64
// records and fields, after `leading_bytes` of padding (which moves every entry).
struct ZipSpec {
  std::vector<std::pair<std::string, std::string>> entries;  // name, contents
  bool zip64 = false;
  std::size_t leading_bytes = 0;
};

inline std::string make_zip(const ZipSpec& spec) {
  std::string out(spec.leading_bytes, '\0');
  std::vector<std::uint64_t> offsets;
  for (const auto& [name, contents] : spec.entries) {
    offsets.push_back(out.size());
    append_le(out, 0x04034b50, 4);
    append_le(out, 20, 2);  // version needed
    append_le(out, 0, 2);   // flags
    append_le(out, 0, 2);   // method: stored
    append_le(out, 0, 4);   // time, date
    append_le(out, bitwise_crc32(contents), 4);
    append_le(out, contents.size(), 4);
    append_le(out, contents.size(), 4);
    append_le(out, name.size(), 2);
    append_le(out, 0, 2);
    out += name;
    out += contents;
  }
  std::uint64_t directory = out.size();
  for (std::size_t i = 0; i < spec.entries.size(); ++i) {
    const auto& [name, contents] = spec.entries[i];
    std::uint64_t small = spec.zip64 ? 0xffffffff : contents.size();
    append_le(out, 0x02014b50, 4);
    append_le(out, 45, 2);
    append_le(out, 45, 2);
    append_le(out, 0, 2);
    append_le(out, 0, 2);
    append_le(out, 0, 4);
    append_le(out, bitwise_crc32(contents), 4);
    append_le(out, small, 4);
    append_le(out, small, 4);
    append_le(out, name.size(), 2);
    append_le(out, spec.zip64 ? 28 : 0, 2);  // extra field size
    append_le(out, 0, 2);                    // comment
    append_le(out, 0, 2);                    // disk
    append_le(out, 0, 2);
    append_le(out, 0, 4);
    append_le(out, spec.zip64 ? 0xffffffff : offsets[i], 4);
    out += name;
    if (spec.zip64) {  // sizes and offset, in that order
      append_le(out, 0x0001, 2);
      append_le(out, 24, 2);
      append_le(out, contents.size(), 8);
      append_le(out, contents.size(), 8);
      append_le(out, offsets[i], 8);
    }
  }
  std::uint64_t directory_size = out.size() - directory;
  if (spec.zip64) {
    std::uint64_t record = out.size();
    append_le(out, 0x06064b50, 4);
    append_le(out, 44, 8);  // size of the rest of the record
    append_le(out, 45, 2);
    append_le(out, 45, 2);
    append_le(out, 0, 4);
    append_le(out, 0, 4);
    append_le(out, spec.entries.size(), 8);
    append_le(out, spec.entries.size(), 8);
    append_le(out, directory_size, 8);
    append_le(out, directory, 8);
    append_le(out, 0x07064b50, 4);
    append_le(out, 0, 4);
    append_le(out, record, 8);
    append_le(out, 1, 4);
  }
  append_le(out, 0x06054b50, 4);
  append_le(out, 0, 2);
  append_le(out, 0, 2);
  append_le(out, spec.zip64 ? 0xffff : spec.entries.size(), 2);
  append_le(out, spec.zip64 ? 0xffff : spec.entries.size(), 2);
  append_le(out, spec.zip64 ? 0xffffffff : directory_size, 4);
  append_le(out, spec.zip64 ? 0xffffffff : directory, 4);
  append_le(out, 0, 2);
  return out;
}

// Edits an existing archive in place (no zip64): finds entries through the central directory.
class ZipEditor {
 public:
  explicit ZipEditor(std::string bytes) : bytes_(std::move(bytes)) {
    std::size_t end = bytes_.rfind(std::string("PK\x05\x06", 4));
    if (end == std::string::npos) throw std::logic_error("test fixture has no end record");
    std::size_t count = get_le(bytes_, end + 10, 2);
    std::size_t at = get_le(bytes_, end + 16, 4);
    for (std::size_t i = 0; i < count; ++i) {
      Entry e;
      e.central = at;
      std::size_t name_size = get_le(bytes_, at + 28, 2);
      e.name = bytes_.substr(at + 46, name_size);
      e.local = get_le(bytes_, at + 42, 4);
      e.size = get_le(bytes_, at + 20, 4);
      e.data = e.local + 30 + get_le(bytes_, e.local + 26, 2) + get_le(bytes_, e.local + 28, 2);
      entries_.push_back(e);
      at += 46 + name_size + get_le(bytes_, at + 30, 2) + get_le(bytes_, at + 32, 2);
    }
  }

  const std::string& bytes() const { return bytes_; }
  std::vector<std::string> names() const {
    std::vector<std::string> names;
    for (const Entry& e : entries_) names.push_back(e.name);
    return names;
  }
  // Stored contents.
  std::string contents(const std::string& name) const {
    const Entry& e = entry(name);
    return bytes_.substr(e.data, e.size);
  }
  // New contents of the same length, with the CRC-32 updated so only the contents differ.
  void replace(const std::string& name, const std::string& contents) {
    const Entry& e = entry(name);
    if (contents.size() != e.size) throw std::logic_error("replace keeps an entry's length");
    bytes_.replace(e.data, e.size, contents);
    std::uint32_t crc = bitwise_crc32(contents);
    put_le(bytes_, e.local + 14, crc, 4);
    put_le(bytes_, e.central + 16, crc, 4);
  }
  // Replaces the first occurrence of `from` in an entry by `to` (same length), CRC updated.
  void patch(const std::string& name, const std::string& from, const std::string& to) {
    std::string text = contents(name);
    std::size_t at = text.find(from);
    if (at == std::string::npos || from.size() != to.size()) throw std::logic_error("patch target not found");
    replace(name, text.replace(at, from.size(), to));
  }
  // A new name of the same length, in both headers.
  void rename(const std::string& name, const std::string& new_name) {
    Entry& e = entry(name);
    if (new_name.size() != name.size()) throw std::logic_error("rename keeps the name's length");
    bytes_.replace(e.local + 30, name.size(), new_name);
    bytes_.replace(e.central + 46, name.size(), new_name);
    e.name = new_name;
  }
  // Damages the contents without touching the CRC.
  void flip_byte(const std::string& name, std::size_t index) { bytes_[entry(name).data + index] ^= 0x5a; }

 private:
  struct Entry {
    std::string name;
    std::size_t central = 0, local = 0, data = 0, size = 0;
  };
  Entry& entry(const std::string& name) {
    for (Entry& e : entries_)
      if (e.name == name) return e;
    throw std::logic_error("no entry " + name);
  }
  const Entry& entry(const std::string& name) const { return const_cast<ZipEditor*>(this)->entry(name); }

  std::string bytes_;
  std::vector<Entry> entries_;
};

// Pickle opcodes spelt out, to write the small pickles the tests need by hand.
class PickleWriter {
 public:
  PickleWriter& raw(const std::string& bytes) { return text_ += bytes, *this; }
  PickleWriter& proto() { return raw(std::string("\x80\x02", 2)); }
  PickleWriter& global(const std::string& module, const std::string& name) {
    return raw("c" + module + "\n" + name + "\n");
  }
  PickleWriter& mark() { return raw("("); }
  PickleWriter& tuple() { return raw("t"); }
  PickleWriter& empty_tuple() { return raw(")"); }
  PickleWriter& empty_dict() { return raw("}"); }
  PickleWriter& setitem() { return raw("s"); }
  PickleWriter& setitems() { return raw("u"); }
  PickleWriter& reduce() { return raw("R"); }
  PickleWriter& build() { return raw("b"); }
  PickleWriter& persid() { return raw("Q"); }
  PickleWriter& none() { return raw("N"); }
  PickleWriter& boolean(bool value) { return raw(value ? "\x88" : "\x89"); }
  PickleWriter& stop() { return raw("."); }
  PickleWriter& put(std::uint8_t key) { return raw(std::string("q") + static_cast<char>(key)); }
  PickleWriter& get(std::uint8_t key) { return raw(std::string("h") + static_cast<char>(key)); }
  PickleWriter& str(const std::string& s) {
    raw("X");
    append_le(text_, s.size(), 4);
    return raw(s);
  }
  // The smallest encoding, as pickle chooses it.
  PickleWriter& integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      raw("K");
      append_le(text_, static_cast<std::uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      raw("M");
      append_le(text_, static_cast<std::uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      raw("J");
      append_le(text_, static_cast<std::uint64_t>(v), 4);
    } else {
      raw("\x8a\x08");
      append_le(text_, static_cast<std::uint64_t>(v), 8);
    }
    return *this;
  }
  PickleWriter& ints(const std::vector<std::int64_t>& values) {
    mark();
    for (std::int64_t v : values) integer(v);
    return tuple();
  }
  // torch._utils._rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, sizes,
  // strides, False, OrderedDict()) as torch.save writes it.
  PickleWriter& tensor(const std::string& storage_type, const std::string& key, std::int64_t numel, std::int64_t offset,
                       const std::vector<std::int64_t>& sizes, const std::vector<std::int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").mark();
    mark().str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).tuple().persid();
    integer(offset).ints(sizes).ints(strides).boolean(false);
    global("collections", "OrderedDict").empty_tuple().reduce();
    return tuple().reduce();
  }

  const std::string& bytes() const { return text_; }

 private:
  std::string text_;
};

// A little-endian f32 storage of these values.
inline std::string f32_bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

}  // namespace rwkvc::test
