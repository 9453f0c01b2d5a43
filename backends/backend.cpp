#include "backends/backend.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

State::State(std::shared_ptr<const StateLayout> layout, std::unique_ptr<StateStorage> storage)
    : layout_(std::move(layout)), storage_(std::move(storage)) {}

State::State(const State& other) : layout_(other.layout_), storage_(other.storage_->clone()) {}

State& State::operator=(const State& other) {
  if (this != &other) {
    layout_ = other.layout_;
    storage_ = other.storage_->clone();
  }
  return *this;
}

StateStorage& State::storage_for(std::string_view backend) {
  if (storage_->backend() != backend)
    throw std::invalid_argument(fmt::format("state lives on the '{}' backend, not '{}': export it with to_host() "
                                            "and import it there",
                                            storage_->backend(), backend));
  return *storage_;
}

void Executable::check_tokens(std::span<const std::int32_t> tokens) const {
  if (tokens.empty()) throw std::invalid_argument("the token list is empty: forward needs at least one token");
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || (vocab_size_ > 0 && tokens[i] >= vocab_size_))
      throw std::invalid_argument(
          fmt::format("token {} at position {} is outside the vocabulary [0, {})", tokens[i], i, vocab_size_));
}

const HostTensor& bind_weight(const Graph& graph, const WeightDecl& decl, const WeightMap& weights) {
  auto it = weights.find(decl.key);
  if (it == weights.end()) throw std::invalid_argument(fmt::format("the model has no tensor '{}'", decl.key));
  const Shape& want = graph.type(decl.value).shape;
  const Shape& have = it->second.shape();
  std::vector<Dim> squeezed = have.dims();
  while (squeezed.size() > want.rank() && squeezed.front() == 1) squeezed.erase(squeezed.begin());
  if (Shape(squeezed) != want)
    throw std::invalid_argument(
        fmt::format("tensor '{}' has shape {}, expected {}", decl.key, to_string(have), to_string(want)));
  if (!is_float(it->second.dtype()))
    throw std::invalid_argument(fmt::format("tensor '{}' is {}, expected a float type", decl.key,
                                            dtype_name(it->second.dtype())));
  return it->second;
}

HostTensor weight_as_declared(const Graph& graph, const WeightDecl& decl, const WeightMap& weights) {
  const TensorType& want = graph.type(decl.value);
  return bind_weight(graph, decl, weights).converted(want.dtype).reshaped(want.shape);
}

}  // namespace rwkvc
