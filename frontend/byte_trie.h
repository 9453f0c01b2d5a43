// A trie over bytes for greedy longest-match tokenizing. Edges live in one open-addressing hash
// table keyed by (node, byte): a dense 256-way node would need ~1 KiB per node, and the World
// vocabulary has hundreds of thousands of nodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rwkvc {

class ByteTrie {
 public:
  // `expected_nodes` only sizes the tables up front; they grow as keys need.
  explicit ByteTrie(std::size_t expected_nodes = 0);

  // Maps the non-empty `key` to `value` (>= 0); a later insert of the same key replaces it.
  void insert(std::string_view key, std::int32_t value);

  struct Match {
    std::size_t length = 0;  // 0: no key begins the text
    std::int32_t value = -1;
  };
  // The longest key that is a prefix of `text`.
  Match longest_prefix(std::string_view text) const;

 private:
  static constexpr std::int32_t kNone = -1;
  std::int32_t child(std::int32_t node, unsigned char byte) const;
  std::int32_t add_child(std::int32_t node, unsigned char byte);
  std::size_t slot_of(std::uint64_t key) const;
  void rehash(std::size_t capacity);

  std::vector<std::int32_t> values_;  // per node: the value of the key ending there, or kNone
  std::vector<std::uint64_t> edge_keys_;  // (parent + 1) << 8 | byte; 0 marks an empty slot
  std::vector<std::int32_t> edge_children_;
  std::size_t edge_count_ = 0;
  unsigned shift_ = 0;  // 64 - log2(capacity)
};

}  // namespace rwkvc
