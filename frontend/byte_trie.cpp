#include "frontend/byte_trie.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <stdexcept>

namespace rwkvc {

namespace {

std::uint64_t edge_key(std::int32_t node, unsigned char byte) {
  return (static_cast<std::uint64_t>(node) + 1) << 8 | byte;
}

}  // namespace

ByteTrie::ByteTrie(std::size_t expected_nodes) {
  values_.reserve(expected_nodes + 1);
  values_.push_back(kNone);  // the root
  // Load factor at most 1/2 keeps probe sequences short.
  rehash(std::bit_ceil(std::max<std::size_t>(2 * expected_nodes, 64)));
}

std::size_t ByteTrie::slot_of(std::uint64_t key) const {
  // Fibonacci hashing: the top bits of key * 2^64/phi spread consecutive keys well.
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
}

void ByteTrie::rehash(std::size_t capacity) {
  std::vector<std::uint64_t> old_keys = std::move(edge_keys_);
  std::vector<std::int32_t> old_children = std::move(edge_children_);
  edge_keys_.assign(capacity, 0);
  edge_children_.assign(capacity, kNone);
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  const std::size_t mask = capacity - 1;
  for (std::size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] == 0) continue;
    std::size_t slot = slot_of(old_keys[i]);
    while (edge_keys_[slot] != 0) slot = (slot + 1) & mask;
    edge_keys_[slot] = old_keys[i];
    edge_children_[slot] = old_children[i];
  }
}

std::int32_t ByteTrie::child(std::int32_t node, unsigned char byte) const {
  const std::uint64_t key = edge_key(node, byte);
  const std::size_t mask = edge_keys_.size() - 1;
  for (std::size_t slot = slot_of(key);; slot = (slot + 1) & mask) {
    if (edge_keys_[slot] == key) return edge_children_[slot];
    if (edge_keys_[slot] == 0) return kNone;
  }
}

std::int32_t ByteTrie::add_child(std::int32_t node, unsigned char byte) {
  if (2 * (edge_count_ + 1) > edge_keys_.size()) rehash(2 * edge_keys_.size());
  if (values_.size() >= static_cast<std::size_t>(INT32_MAX)) throw std::length_error("ByteTrie: too many nodes");
  const std::uint64_t key = edge_key(node, byte);
  const std::size_t mask = edge_keys_.size() - 1;
  std::size_t slot = slot_of(key);
  while (edge_keys_[slot] != 0) slot = (slot + 1) & mask;
  const auto created = static_cast<std::int32_t>(values_.size());
  values_.push_back(kNone);
  edge_keys_[slot] = key;
  edge_children_[slot] = created;
  ++edge_count_;
  return created;
}

void ByteTrie::insert(std::string_view key, std::int32_t value) {
  if (key.empty() || value < 0) throw std::invalid_argument("ByteTrie: keys must be non-empty and values >= 0");
  std::int32_t node = 0;
  for (char c : key) {
    auto byte = static_cast<unsigned char>(c);
    std::int32_t next = child(node, byte);
    node = next != kNone ? next : add_child(node, byte);
  }
  values_[static_cast<std::size_t>(node)] = value;
}

ByteTrie::Match ByteTrie::longest_prefix(std::string_view text) const {
  Match best;
  std::int32_t node = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node == kNone) break;
    if (values_[static_cast<std::size_t>(node)] != kNone) best = {i + 1, values_[static_cast<std::size_t>(node)]};
  }
  return best;
}

}  // namespace rwkvc
