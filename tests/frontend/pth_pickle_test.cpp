// The pickle subset torch.save writes: the objects it builds, the identity the memo keeps, and a
// refusal naming the opcode or global and its byte for everything else.
#include <catch2/catch.hpp>

#include "frontend/pickle_reader.h"
#include "pth_test_support.h"

namespace rwkvc::test {

namespace {

using Catch::Matchers::Contains;
using pickle::Kind;

constexpr std::string_view kAllowed[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                         "torch.FloatStorage"};

pickle::Document parse(const std::string& bytes) {
  return pickle::parse(std::as_bytes(std::span(bytes.data(), bytes.size())), kAllowed, "test.pkl");
}

void expect_refused(const std::string& bytes, const std::string& part) {
  CHECK_THROWS_WITH(parse(bytes), Contains("test.pkl: ") && Contains(part));
}

}  // namespace

TEST_CASE("pickle: an OrderedDict of ints, a tuple, None and a bool", "[frontend][pth][pickle]") {
  PickleWriter p;
  p.proto().global("collections", "OrderedDict").put(0).empty_tuple().reduce().put(1).mark();
  p.str("small").integer(200).str("tuple").ints({1, 300, 70000, -2, std::int64_t{1} << 40});
  p.str("none").none().str("flag").boolean(true).setitems().stop();
  pickle::Document doc = parse(p.bytes());

  const pickle::Object& root = doc.at(doc.root());
  REQUIRE(root.kind == Kind::dict);
  CHECK(root.offset == p.bytes().find('R'));  // made by the REDUCE of OrderedDict()
  REQUIRE(root.items.size() == 8);
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < 8; i += 2) keys.push_back(doc.at(root.items[i]).text);
  CHECK(keys == std::vector<std::string>{"small", "tuple", "none", "flag"});
  CHECK(doc.at(root.items[1]).integer == 200);
  const pickle::Object& tuple = doc.at(root.items[3]);
  REQUIRE(tuple.kind == Kind::tuple);
  std::vector<std::int64_t> values;
  for (pickle::ObjectId id : tuple.items) values.push_back(doc.at(id).integer);
  CHECK(values == std::vector<std::int64_t>{1, 300, 70000, -2, std::int64_t{1} << 40});
  CHECK(doc.at(root.items[5]).kind == Kind::none);
  CHECK(doc.at(root.items[7]).kind == Kind::boolean);
  CHECK(doc.at(root.items[7]).integer == 1);
}

TEST_CASE("pickle: LONG1 integers of every width, sign-extended", "[frontend][pth][pickle]") {
  auto long1 = [](const std::string& payload) {
    return parse(std::string("\x80\x02\x8a", 3) + static_cast<char>(payload.size()) + payload + ".");
  };
  auto value = [](const pickle::Document& d) { return d.at(d.root()).integer; };
  CHECK(value(long1("")) == 0);
  CHECK(value(long1("\xff")) == -1);
  CHECK(value(long1(std::string("\x00\x80", 2))) == -0x8000);
  CHECK(value(long1(std::string("\x00\x80\x00", 3))) == 0x8000);  // how pickle writes 32768
  CHECK(value(long1(std::string("\x00\x00\x00\x00\x00\x80", 6))) == -(std::int64_t{1} << 47));
  CHECK(value(long1("\xff\xff\xff\xff\xff\xff\xff\x7f")) == INT64_MAX);
  CHECK_THROWS_WITH(long1("123456789"), Contains("9-byte integer") && Contains("byte 2"));
}

TEST_CASE("pickle: the memo hands back the same object, even one holding itself", "[frontend][pth][pickle]") {
  PickleWriter shared;
  shared.proto().mark().empty_dict().put(1).get(1).tuple().stop();
  pickle::Document a = parse(shared.bytes());
  const pickle::Object& pair = a.at(a.root());
  REQUIRE(pair.items.size() == 2);
  CHECK(pair.items[0] == pair.items[1]);

  PickleWriter cycle;  // d = {}; d[d] = d
  cycle.proto().empty_dict().put(0).get(0).get(0).setitem().stop();
  pickle::Document b = parse(cycle.bytes());
  const pickle::Object& dict = b.at(b.root());
  CHECK(dict.items == std::vector<pickle::ObjectId>{b.root(), b.root()});
}

TEST_CASE("pickle: calls and persistent ids are recorded, never run", "[frontend][pth][pickle]") {
  PickleWriter p;
  p.proto().global("torch._utils", "_rebuild_tensor_v2").mark().mark().str("storage").global("torch", "FloatStorage");
  p.tuple().persid().integer(3).tuple().reduce().stop();
  pickle::Document doc = parse(p.bytes());
  const pickle::Object& call = doc.at(doc.root());
  REQUIRE(call.kind == Kind::call);
  CHECK(doc.at(call.items[0]).text == "torch._utils._rebuild_tensor_v2");
  const pickle::Object& arguments = doc.at(call.items[1]);
  REQUIRE(arguments.items.size() == 2);
  const pickle::Object& persistent = doc.at(arguments.items[0]);
  REQUIRE(persistent.kind == Kind::persistent_id);
  const pickle::Object& record = doc.at(persistent.items[0]);
  REQUIRE(record.items.size() == 2);
  CHECK(doc.at(record.items[0]).text == "storage");
  CHECK(doc.at(record.items[1]).kind == Kind::global);
  CHECK(doc.at(arguments.items[1]).integer == 3);
}

TEST_CASE("pickle: BUILD on a state_dict's OrderedDict leaves its items alone", "[frontend][pth][pickle]") {
  PickleWriter p;
  p.proto().global("collections", "OrderedDict").empty_tuple().reduce().str("w").integer(1).setitem();
  p.empty_dict().str("_metadata").integer(9).setitem().build().stop();
  pickle::Document doc = parse(p.bytes());
  const pickle::Object& root = doc.at(doc.root());
  REQUIRE(root.items.size() == 2);
  CHECK(doc.at(root.items[0]).text == "w");
}

TEST_CASE("pickle: anything outside the subset is refused with its opcode and byte", "[frontend][pth][pickle]") {
  const std::string proto("\x80\x02", 2);
  SECTION("an opcode of a later protocol") {
    expect_refused(proto + "\x95", "unsupported pickle opcode 0x95 (FRAME) at byte 2");
  }
  SECTION("a protocol-0 opcode") {
    expect_refused(proto + "K\x01" + "0", "unsupported pickle opcode 0x30 (POP) at byte 4");
  }
  SECTION("a byte that is no opcode") { expect_refused(proto + "\xff", "0xff (no pickle opcode) at byte 2"); }
  SECTION("a later protocol") { expect_refused("\x80\x04", "0x80 (PROTO) at byte 0 asks for protocol 4"); }
  SECTION("a global outside the allowlist") {
    expect_refused(proto + "cposix\nsystem\n", "pickle global 'posix.system' at byte 2 is not allowed");
  }
  SECTION("a global whose name never ends") {
    expect_refused(proto + "cbuiltins\neval", "0x63 (GLOBAL) at byte 2 has no newline");
  }
  SECTION("a string longer than the pickle") {
    expect_refused(proto + std::string("X\x10\x00\x00\x00", 5) + "abc",
                   "0x58 (BINUNICODE) at byte 2 needs 16 more bytes");
  }
  SECTION("no STOP") { expect_refused(proto + "K\x01", "ends at byte 4 without a STOP opcode"); }
  SECTION("STOP on an empty stack") {
    expect_refused(proto + ".", "0x2e (STOP) at byte 2 needs an item on the pickle stack");
  }
  SECTION("REDUCE with one item") { expect_refused(proto + ")R", "0x52 (REDUCE) at byte 3 needs 2 items"); }
  SECTION("REDUCE of something other than a global") {
    expect_refused(proto + "K\x01)R", "0x52 (REDUCE) at byte 5 expects the callable to be a global, but it is a int");
  }
  SECTION("OrderedDict called with arguments") {
    expect_refused(proto + "ccollections\nOrderedDict\n(K\x01tR", "passes arguments to collections.OrderedDict");
  }
  SECTION("TUPLE without MARK") { expect_refused(proto + "K\x01t", "0x74 (TUPLE) at byte 4 has no MARK"); }
  SECTION("a pop below the innermost MARK") {
    expect_refused(proto + "})(s", "0x73 (SETITEM) at byte 5 needs 2 items");
  }
  SECTION("SETITEMS with an odd item count") {
    expect_refused(proto + "}(K\x01u", "has an odd number of items (1) after its MARK");
  }
  SECTION("SETITEM into a tuple") {
    expect_refused(proto + ")K\x01K\x02s",
                   "0x73 (SETITEM) at byte 7 expects its target to be a dict, but it is a tuple");
  }
  SECTION("BUILD on a tuple") {
    expect_refused(proto + ")}b", "0x62 (BUILD) at byte 4 expects its target to be a dict");
  }
  SECTION("a memo entry never stored") {
    expect_refused(proto + "h\x07", "0x68 (BINGET) at byte 2 recalls memo entry 7");
  }
  SECTION("BINPUT on an empty stack") {
    expect_refused(proto + std::string("q\x00", 2), "0x71 (BINPUT) at byte 2 needs an item");
  }
}

}  // namespace rwkvc::test
