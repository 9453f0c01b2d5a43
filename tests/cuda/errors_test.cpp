// Bad input is refused before anything runs, naming what is wrong, and leaves the state as it was.
#include <catch2/catch.hpp>

#include "cuda_test_support.h"

namespace rwkvc::test {

TEST_CASE("CUDA forward refuses bad tokens and foreign states without touching the state", "[cuda][errors]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  auto exe = cuda->compile(build_graph(model.config), model.weights);
  State state = exe->new_state();
  exe->forward(random_tokens(3, model.config.vocab, 8), state);
  HostState before = state.to_host();

  std::vector<std::int32_t> empty;
  CHECK_THROWS_AS(exe->forward(empty, state), std::invalid_argument);
  std::vector<std::int32_t> outside{1, static_cast<std::int32_t>(model.config.vocab)};
  CHECK_THROWS_WITH(exe->forward(outside, state), Catch::Contains("position 1"));
  std::vector<std::int32_t> negative{-1};
  CHECK_THROWS_AS(exe->forward(negative, state), std::invalid_argument);

  State on_cpu = make_backend("cpu")->compile(build_graph(model.config), model.weights)->new_state();
  std::vector<std::int32_t> one{1};
  CHECK_THROWS_WITH(exe->forward(one, on_cpu), Catch::Contains("'cpu' backend"));

  Model other = load_model(fixture_path("rwkv4-tiny.safetensors"));
  State foreign = cuda->compile(build_graph(other.config), other.weights)->new_state();
  CHECK_THROWS_WITH(exe->forward(one, foreign), Catch::Contains("rwkv4"));
  CHECK_THROWS_AS(exe->import_state(foreign.to_host()), std::invalid_argument);

  CHECK(state.to_host() == before);
}

TEST_CASE("A CUDA device index out of range is refused", "[cuda][errors]") {
  auto cuda = cuda_or_skip();
  if (!cuda) return;
  CHECK_THROWS_WITH(make_cuda_backend({1000}), Catch::StartsWith("no CUDA device"));
}

TEST_CASE("Without a driver the device list says why", "[cuda][errors]") {
  DeviceList list = list_cuda_devices();
  CHECK(list.backend == "cuda");
  if (list.devices.empty())
    CHECK_THAT(list.unavailable, Catch::StartsWith("no CUDA device ("));
  else
    CHECK(list.unavailable.empty());
}

}  // namespace rwkvc::test
