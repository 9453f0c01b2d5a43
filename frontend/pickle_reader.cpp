#include "frontend/pickle_reader.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

namespace rwkvc::pickle {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::string: return "str";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::persistent_id: return "persistent id";
    case Kind::call: return "call";
  }
  return "?";
}

namespace {

// The opcodes read here (Python's Lib/pickletools.py documents each).
enum Opcode : std::uint8_t {
  kMark = '(',
  kStop = '.',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinUnicode = 'X',
  kBuild = 'b',
  kGlobal = 'c',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kSetItems = 'u',
  kEmptyTuple = ')',
  kEmptyDict = '}',
  kProto = 0x80,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
};

constexpr int kMaxProtocol = 2;

// Every opcode of protocols 0 to 5, so that a refusal can say which one it met.
struct OpcodeName {
  std::uint8_t code;
  std::string_view name;
};
// clang-format off
constexpr OpcodeName kOpcodeNames[] = {
    {'(', "MARK"},              {'.', "STOP"},              {'0', "POP"},               {'1', "POP_MARK"},
    {'2', "DUP"},               {'F', "FLOAT"},             {'I', "INT"},               {'J', "BININT"},
    {'K', "BININT1"},           {'L', "LONG"},              {'M', "BININT2"},           {'N', "NONE"},
    {'P', "PERSID"},            {'Q', "BINPERSID"},         {'R', "REDUCE"},            {'S', "STRING"},
    {'T', "BINSTRING"},         {'U', "SHORT_BINSTRING"},   {'V', "UNICODE"},           {'X', "BINUNICODE"},
    {'a', "APPEND"},            {'b', "BUILD"},             {'c', "GLOBAL"},            {'d', "DICT"},
    {'}', "EMPTY_DICT"},        {'e', "APPENDS"},           {'g', "GET"},               {'h', "BINGET"},
    {'i', "INST"},              {'j', "LONG_BINGET"},       {'l', "LIST"},              {']', "EMPTY_LIST"},
    {'o', "OBJ"},               {'p', "PUT"},               {'q', "BINPUT"},            {'r', "LONG_BINPUT"},
    {'s', "SETITEM"},           {'t', "TUPLE"},             {')', "EMPTY_TUPLE"},       {'u', "SETITEMS"},
    {'G', "BINFLOAT"},          {0x80, "PROTO"},            {0x81, "NEWOBJ"},           {0x82, "EXT1"},
    {0x83, "EXT2"},             {0x84, "EXT4"},             {0x85, "TUPLE1"},           {0x86, "TUPLE2"},
    {0x87, "TUPLE3"},           {0x88, "NEWTRUE"},          {0x89, "NEWFALSE"},         {0x8a, "LONG1"},
    {0x8b, "LONG4"},            {'B', "BINBYTES"},          {'C', "SHORT_BINBYTES"},    {0x8c, "SHORT_BINUNICODE"},
    {0x8d, "BINUNICODE8"},      {0x8e, "BINBYTES8"},        {0x8f, "EMPTY_SET"},        {0x90, "ADDITEMS"},
    {0x91, "FROZENSET"},        {0x92, "NEWOBJ_EX"},        {0x93, "STACK_GLOBAL"},     {0x94, "MEMOIZE"},
    {0x95, "FRAME"},            {0x96, "BYTEARRAY8"},       {0x97, "NEXT_BUFFER"},      {0x98, "READONLY_BUFFER"},
};
// clang-format on

// "0x95 (FRAME)"
std::string describe_opcode(std::uint8_t code) {
  for (const OpcodeName& op : kOpcodeNames)
    if (op.code == code) return fmt::format("{:#04x} ({})", code, op.name);
  return fmt::format("{:#04x} (no pickle opcode)", code);
}

class Parser {
 public:
  Parser(std::span<const std::byte> bytes, std::span<const std::string_view> allowed, const std::string& origin)
      : bytes_(bytes), allowed_(allowed), origin_(origin) {}

  Document run() {
    while (true) {
      if (next_ == bytes_.size())
        fail(fmt::format("the pickle ends at byte {} without a STOP opcode: it is truncated", next_));
      opcode_at_ = next_;
      opcode_ = u8();
      if (opcode_ == kStop) break;
      step();
    }
    ObjectId root = pop();
    return Document(std::move(objects_), root);
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(fmt::format("{}: {}", origin_, why));
  }
  // "pickle opcode 0x52 (REDUCE) at byte 30 <why>"
  [[noreturn]] void fail_here(const std::string& why) const {
    fail(fmt::format("pickle opcode {} at byte {} {}", describe_opcode(opcode_), opcode_at_, why));
  }

  void step() {
    switch (opcode_) {
      case kProto: {
        std::uint8_t version = u8();
        if (version > kMaxProtocol)
          fail_here(fmt::format("asks for protocol {}; rwkvc reads protocol {} as torch.save writes it", version,
                                kMaxProtocol));
        break;
      }
      case kMark: marks_.push_back(stack_.size()); break;
      case kNone: push(Kind::none); break;
      case kNewTrue: push(Kind::boolean, 1); break;
      case kNewFalse: push(Kind::boolean, 0); break;
      case kBinInt1: push(Kind::integer, u8()); break;
      case kBinInt2: push(Kind::integer, static_cast<std::int64_t>(little_endian(2))); break;
      case kBinInt: push(Kind::integer, static_cast<std::int32_t>(little_endian(4))); break;
      case kLong1: push(Kind::integer, long1()); break;
      case kBinUnicode: {
        auto size = static_cast<std::size_t>(little_endian(4));
        push_text(Kind::string, std::string(text(size)));
        break;
      }
      case kGlobal: push_text(Kind::global, global()); break;
      case kEmptyTuple: push(Kind::tuple); break;
      case kTuple: push_items(Kind::tuple, pop_to_mark()); break;
      case kTuple1:
      case kTuple2:
      case kTuple3: push_items(Kind::tuple, pop_n(opcode_ - kTuple1 + 1)); break;
      case kEmptyDict: push(Kind::dict); break;
      case kSetItem: {
        std::vector<ObjectId> pair = pop_n(2);
        add_to_dict(pair);
        break;
      }
      case kSetItems: {
        std::vector<ObjectId> pairs = pop_to_mark();
        if (pairs.size() % 2 != 0)
          fail_here(fmt::format("has an odd number of items ({}) after its MARK, not key-value pairs", pairs.size()));
        add_to_dict(pairs);
        break;
      }
      case kBinPut: memoize(u8()); break;
      case kLongBinPut: memoize(static_cast<std::uint32_t>(little_endian(4))); break;
      case kBinGet: recall(u8()); break;
      case kLongBinGet: recall(static_cast<std::uint32_t>(little_endian(4))); break;
      case kBinPersId: {
        ObjectId id = pop();
        push_items(Kind::persistent_id, {id});
        break;
      }
      case kReduce: reduce(); break;
      case kBuild: build(); break;
      default:
        fail(
            fmt::format("unsupported pickle opcode {} at byte {}: rwkvc reads only the protocol-2 subset that "
                        "torch.save writes",
                        describe_opcode(opcode_), opcode_at_));
    }
  }

  // --- bytes ---
  std::span<const std::byte> take(std::size_t count) {
    if (count > bytes_.size() - next_)
      fail_here(
          fmt::format("needs {} more bytes, but the pickle ends at byte {}: it is truncated", count, bytes_.size()));
    std::span<const std::byte> result = bytes_.subspan(next_, count);
    next_ += count;
    return result;
  }
  std::string_view text(std::size_t count) {
    std::span<const std::byte> bytes = take(count);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  std::uint8_t u8() { return std::to_integer<std::uint8_t>(take(1)[0]); }
  std::uint64_t little_endian(std::size_t count) {
    std::span<const std::byte> bytes = take(count);
    std::uint64_t value = 0;
    for (std::size_t i = count; i-- > 0;) value = value << 8 | std::to_integer<std::uint64_t>(bytes[i]);
    return value;
  }
  // LONG1: a byte count, then a little-endian two's-complement integer of that many bytes.
  std::int64_t long1() {
    std::uint8_t count = u8();
    if (count > 8) fail_here(fmt::format("holds a {}-byte integer, beyond 64 bits", count));
    if (count == 0) return 0;
    std::uint64_t value = little_endian(count);
    if (count < 8 && (value >> (8 * count - 1)) != 0) value |= ~std::uint64_t{0} << (8 * count);  // sign-extend
    return static_cast<std::int64_t>(value);
  }
  std::string_view line() {
    auto rest = std::string_view(reinterpret_cast<const char*>(bytes_.data()) + next_, bytes_.size() - next_);
    std::size_t end = rest.find('\n');
    if (end == std::string_view::npos) fail_here("has no newline ending its name: the pickle is truncated");
    next_ += end + 1;
    return rest.substr(0, end);
  }

  // --- objects and the stack ---
  Object& push(Kind kind, std::int64_t integer = 0) {
    if (objects_.size() == std::numeric_limits<ObjectId>::max()) fail_here("makes more objects than rwkvc can number");
    Object& object = objects_.emplace_back();
    object.kind = kind;
    object.integer = integer;
    object.offset = opcode_at_;
    stack_.push_back(static_cast<ObjectId>(objects_.size() - 1));
    return object;
  }
  void push_text(Kind kind, std::string text) { push(kind).text = std::move(text); }
  void push_items(Kind kind, std::vector<ObjectId> items) { push(kind).items = std::move(items); }
  void push_existing(ObjectId id) { stack_.push_back(id); }

  // Items below the innermost MARK belong to an outer opcode and cannot be popped.
  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<ObjectId> pop_n(std::size_t count) {
    if (stack_.size() - fence() < count)
      fail_here(fmt::format("needs {} on the pickle stack, which has {} since its last MARK",
                            count == 1 ? std::string("an item") : fmt::format("{} items", count),
                            stack_.size() - fence()));
    std::vector<ObjectId> items(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
    stack_.resize(stack_.size() - count);
    return items;
  }
  ObjectId pop() { return pop_n(1)[0]; }
  ObjectId top() {
    if (stack_.size() == fence()) fail_here("needs an item on the pickle stack, which has none since its last MARK");
    return stack_.back();
  }
  std::vector<ObjectId> pop_to_mark() {
    if (marks_.empty()) fail_here("has no MARK to collect items from");
    std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ObjectId> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  // The object `id` if it is of `kind`; `role` says what it was for.
  Object& expect(ObjectId id, Kind kind, std::string_view role) {
    Object& object = objects_[id];
    if (object.kind != kind)
      fail_here(fmt::format("expects {} to be a {}, but it is a {}", role, kind_name(kind), kind_name(object.kind)));
    return object;
  }

  void memoize(std::uint32_t key) { memo_[key] = top(); }
  void recall(std::uint32_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) fail_here(fmt::format("recalls memo entry {}, which was never stored", key));
    push_existing(it->second);
  }

  std::string global() {
    std::string module(line());
    std::string name(line());
    std::string full = module + "." + name;
    if (std::find(allowed_.begin(), allowed_.end(), full) == allowed_.end())
      fail(fmt::format("pickle global '{}' at byte {} is not allowed: rwkvc reads {}, and never runs other code", full,
                       opcode_at_, fmt::join(allowed_, ", ")));
    return full;
  }

  void add_to_dict(const std::vector<ObjectId>& pairs) {
    Object& dict = expect(top(), Kind::dict, "its target");
    dict.items.insert(dict.items.end(), pairs.begin(), pairs.end());
  }

  void reduce() {
    std::vector<ObjectId> call = pop_n(2);
    const Object& callable = expect(call[0], Kind::global, "the callable");
    const Object& arguments = expect(call[1], Kind::tuple, "the arguments");
    if (callable.text == kOrderedDict) {
      if (!arguments.items.empty()) fail_here("passes arguments to collections.OrderedDict, which rwkvc does not read");
      push(Kind::dict);
    } else {
      push_items(Kind::call, std::move(call));
    }
  }

  // Sets an object's attributes: what an OrderedDict state_dict carries (_metadata) is not needed.
  void build() {
    pop();
    expect(top(), Kind::dict, "its target");
  }

  std::span<const std::byte> bytes_;
  std::span<const std::string_view> allowed_;
  const std::string& origin_;
  std::size_t next_ = 0;
  std::size_t opcode_at_ = 0;
  std::uint8_t opcode_ = 0;
  std::vector<Object> objects_;
  std::vector<ObjectId> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, ObjectId> memo_;
};

}  // namespace

Document parse(std::span<const std::byte> bytes, std::span<const std::string_view> allowed_globals,
               const std::string& origin) {
  return Parser(bytes, allowed_globals, origin).run();
}

}  // namespace rwkvc::pickle
