// The zip layer of .pth files: the central directory (zip64 included), stored entries as views,
// deflated entries inflated (streams made by Python's zlib), CRC-32, and damaged archives refused.
#include <random>

#include <catch2/catch.hpp>

#include "frontend_test_support.h"
#include "frontend/inflate.h"
#include "frontend/zip_archive.h"
#include "pth_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;

std::span<const std::byte> as_span(const std::string& bytes) {
  return std::as_bytes(std::span(bytes.data(), bytes.size()));
}

std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// An archive over a copy of `bytes` that the archive keeps alive.
ZipArchive open_zip(const std::string& bytes) {
  auto copy = std::make_shared<const std::string>(bytes);
  return ZipArchive(as_span(*copy), copy, "archive.zip");
}

std::string read_entry(const ZipArchive& zip, const std::string& name) {
  const ZipEntry* entry = zip.find(name);
  REQUIRE(entry != nullptr);
  return as_string(zip.read(*entry).bytes);
}

std::string hex(const std::string& digits) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
    bytes.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  return bytes;
}

std::string inflate(const std::string& compressed, std::size_t size) {
  std::string out(size, '\0');
  inflate_raw(as_span(compressed), std::as_writable_bytes(std::span(out.data(), out.size())));
  return out;
}

// "token 0; token 1; token 4; ..." : the text the dynamic-Huffman stream below encodes.
std::string token_text() {
  std::string text;
  for (int i = 0; i < 60; ++i) text += fmt::format("token {}; ", i * i % 97);
  return text;
}

// Raw deflate streams from zlib.compressobj(level, DEFLATED, -15) in Python.
const std::string kStoredStream = hex("011500eaff73746f7265642062797465732c206c6576656c2030");  // level 0
const std::string kFixedStream = hex("4b4c4a4e444200");  // "abcabcabcabcabc", Z_FIXED
const std::string kDynamicStream = hex(
    "6d904b0ec3400843af9223747ec028e7c92a52b299fb2b6a259e17cdcec2601eacfb3caeedb36feb274a8a9e626259aa3a52356a9d3e6334"
    "486b8c62764fe515977e268ddad456e25ce0f40ddc293a9da30bd5873bc80b00585b210edcc1680520f40a3d8094422dc0338192dcc82b62"
    "8118f620d859ebaab517f532a11425dbff7e318953ecdf7b1e");

}  // namespace

TEST_CASE("zip_crc32 is CRC-32/ISO-HDLC", "[frontend][pth][zip]") {
  CHECK(zip_crc32(as_span(std::string("123456789"))) == 0xcbf43926);  // the catalogue's check value
  CHECK(zip_crc32({}) == 0);
  std::mt19937 rng(5);
  for (std::size_t size = 1; size < 40; ++size) {  // every tail length of the 8-byte loop
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    INFO(size);
    CHECK(zip_crc32(as_span(bytes)) == bitwise_crc32(bytes));
  }
}

TEST_CASE("inflate_raw reads stored, fixed and dynamic Huffman blocks", "[frontend][pth][zip]") {
  CHECK(inflate(kStoredStream, 21) == "stored bytes, level 0");
  CHECK(inflate(kFixedStream, 15) == "abcabcabcabcabc");  // one literal run, then an overlapping copy
  CHECK(inflate(kDynamicStream, 591) == token_text());
  CHECK(inflate(hex("0300"), 0).empty());
}

TEST_CASE("inflate_raw refuses malformed streams", "[frontend][pth][zip]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(inflate(kDynamicStream.substr(0, 100), 591), Contains("ends early"));
  CHECK_THROWS_WITH(inflate(kFixedStream, 14), Contains("more than the 14 bytes declared"));
  CHECK_THROWS_WITH(inflate(kFixedStream, 16), Contains("inflates to 15 bytes, not the 16 declared"));
  CHECK_THROWS_WITH(inflate(hex("07"), 1), Contains("invalid block type"));
  CHECK_THROWS_WITH(inflate(hex("010500fbff") + "hello", 5), Contains("invalid stored block lengths"));
  CHECK_THROWS_WITH(inflate(hex("030200"), 3), Contains("invalid distance too far back"));
}

TEST_CASE("zip stored entries are views of the archive's bytes", "[frontend][pth][zip]") {
  auto bytes = std::make_shared<const std::string>(make_zip({{{"m/data.pkl", "pickle"}, {"m/data/0", "0123456789"}}}));
  ZipArchive zip(as_span(*bytes), bytes, "archive.zip");
  REQUIRE(zip.entries().size() == 2);
  CHECK(zip.entries()[1].name == "m/data/0");
  CHECK(zip.find("m/data/1") == nullptr);
  ZipEntryData data = zip.read(*zip.find("m/data/0"));
  CHECK(as_string(data.bytes) == "0123456789");
  CHECK(reinterpret_cast<const char*>(data.bytes.data()) == bytes->data() + bytes->find("0123456789"));
  CHECK(data.owner == bytes);
}

TEST_CASE("zip64 end records and size fields are read", "[frontend][pth][zip]") {
  ZipArchive zip = open_zip(make_zip({{{"a/data.pkl", "first"}, {"a/data/0", "second entry"}}, /*zip64=*/true}));
  REQUIRE(zip.entries().size() == 2);
  CHECK(zip.entries()[1].size == 12);
  CHECK(read_entry(zip, "a/data.pkl") == "first");
  CHECK(read_entry(zip, "a/data/0") == "second entry");
}

TEST_CASE("deflated entries inflate to the stored ones", "[frontend][pth][zip]") {
  ZipArchive stored = open_zip(read_bytes(model_fixture("strided.pth")));
  ZipArchive deflated = open_zip(read_bytes(model_fixture("strided-deflated.pth")));
  REQUIRE(deflated.entries().size() == stored.entries().size());
  for (const ZipEntry& entry : deflated.entries()) {
    INFO(entry.name);
    CHECK(entry.method == 8);
    CHECK(read_entry(deflated, entry.name) == read_entry(stored, entry.name));
  }
}

TEST_CASE("damaged zip archives are refused, naming what is wrong", "[frontend][pth][zip]") {
  const std::string name = "a/data/0", contents = "0123456789";
  const std::string good = make_zip({{{name, contents}}});
  const std::size_t central = 30 + name.size() + contents.size();  // the central header follows the one entry
  const std::size_t end = central + 46 + name.size();
  auto refused_open = [](const std::string& bytes, const std::string& part) {
    CHECK_THROWS_WITH(open_zip(bytes), Contains("archive.zip: ") && Contains(part));
  };
  auto refused_read = [&](const std::string& bytes, const std::string& part) {
    ZipArchive zip = open_zip(bytes);
    CHECK_THROWS_WITH(zip.read(zip.entries().at(0)), Contains("archive.zip: ") && Contains(part));
  };

  SECTION("truncated anywhere") {
    const std::string fixture = read_bytes(model_fixture("strided.pth"));
    refused_open(fixture.substr(0, fixture.size() / 2), "no zip end-of-central-directory record");
    refused_open(fixture.substr(0, fixture.size() - 1), "no zip end-of-central-directory record");
    refused_open(fixture.substr(0, 10), "10 bytes long, too short for a zip archive");
  }
  SECTION("central directory beyond the file") {
    std::string bytes = good;
    put_le(bytes, end + 16, 5000, 4);
    refused_open(bytes, "central directory (bytes 5000 to");
  }
  SECTION("more entries than the directory can hold") {
    std::string bytes = good;
    put_le(bytes, end + 10, 40, 2);
    refused_open(bytes, "cannot hold the 40 entries");
  }
  SECTION("an entry named twice") { refused_open(make_zip({{{"x", "1"}, {"x", "2"}}}), "entry 'x' appears twice"); }
  SECTION("a saturated size without a zip64 field") {
    std::string bytes = good;
    put_le(bytes, central + 20, 0xffffffff, 4);
    refused_open(bytes, "entry 'a/data/0' defers its sizes to a zip64 field that it lacks");
  }
  SECTION("a zip64 locator pointing nowhere") {
    std::string bytes = make_zip({{{name, contents}}, true});
    put_le(bytes, bytes.size() - 22 - 20 + 8, 3, 8);
    refused_open(bytes, "zip64 locator points to byte 3");
  }
  SECTION("a bad CRC") {
    std::string bytes = good;
    bytes[30 + name.size() + 4] ^= 1;
    refused_read(bytes, "entry 'a/data/0' fails its CRC-32 check");
  }
  SECTION("an entry running past the end of the file") {
    std::string bytes = good;
    put_le(bytes, central + 42, central - 5, 4);  // local header moved to 5 bytes before the directory
    refused_read(bytes, "entry 'a/data/0' has no local file header at byte");
    put_le(bytes, central + 42, 0, 4);
    put_le(bytes, central + 20, 900, 4);
    put_le(bytes, central + 24, 900, 4);
    refused_read(bytes, "entry 'a/data/0' (bytes 38 to 938) runs past the end of the file");
  }
  SECTION("a local header naming another entry") {
    std::string bytes = good;
    bytes[30] = 'b';
    refused_read(bytes, "entry 'a/data/0' has a local file header (byte 0) that names another entry");
  }
  SECTION("encryption") {
    std::string bytes = good;
    put_le(bytes, central + 8, 1, 2);
    refused_read(bytes, "entry 'a/data/0' is encrypted");
  }
  SECTION("an unknown compression method") {
    std::string bytes = good;
    put_le(bytes, central + 10, 12, 2);
    refused_read(bytes, "entry 'a/data/0' uses compression method 12");
  }
  SECTION("a deflated entry claiming more than deflate can give") {
    std::string bytes = good;
    put_le(bytes, central + 10, 8, 2);
    put_le(bytes, central + 24, 11 * 1032, 4);
    refused_read(bytes, "claims 11352 bytes inflated from 10 deflated");
  }
  SECTION("a deflated entry that does not inflate") {
    std::string bytes = good;
    put_le(bytes, central + 10, 8, 2);
    refused_read(bytes, "entry 'a/data/0' does not inflate: ");
  }
}

}  // namespace rwkvc::test
