// The part of Python's pickle format (protocol 2) that torch.save uses for a dict of tensors,
// read into plain data. Nothing is executed: a global is only a name checked against the
// caller's allowlist, and calling one (REDUCE) is recorded for the caller to interpret.
// Any other opcode is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rwkvc::pickle {

// Objects live in one array and refer to each other by index, so a pickle that makes a
// container hold itself makes no ownership cycle.
using ObjectId = std::uint32_t;

enum class Kind { none, boolean, integer, string, tuple, dict, global, persistent_id, call };

std::string_view kind_name(Kind kind);  // "tuple", "dict", ...

struct Object {
  Kind kind = Kind::none;
  std::int64_t integer = 0;  // boolean (0 or 1) and integer
  std::string text;          // string; global: "module.name"
  // tuple: the elements; dict: keys and values alternating; persistent_id: the id object;
  // call: the callable (a global) and its argument tuple.
  std::vector<ObjectId> items;
  std::size_t offset = 0;  // the byte of the opcode that made it
};

// REDUCE of this global with no arguments makes an empty dict: OrderedDict is a dict whose
// order, like every dict's here, is the order of insertion.
inline constexpr std::string_view kOrderedDict = "collections.OrderedDict";

class Document {
 public:
  Document(std::vector<Object> objects, ObjectId root) : objects_(std::move(objects)), root_(root) {}
  const Object& at(ObjectId id) const { return objects_.at(id); }
  ObjectId root() const { return root_; }

 private:
  std::vector<Object> objects_;
  ObjectId root_;
};

// Reads one pickle from `bytes`, stopping at its STOP opcode. `allowed_globals` names every
// "module.name" the pickle may refer to. Throws std::invalid_argument starting with `origin`
// and naming the opcode or global and its byte offset for anything outside the subset.
Document parse(std::span<const std::byte> bytes, std::span<const std::string_view> allowed_globals,
               const std::string& origin);

}  // namespace rwkvc::pickle
