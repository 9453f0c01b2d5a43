// The pass manager's pipeline text and presets; malformed pipelines are errors naming the
// valid passes.
#include <catch2/catch.hpp>

#include "passes/pass_manager.h"

namespace rwkvc {

TEST_CASE("a pipeline names passes separated by commas, blanks allowed", "[passes][pipeline]") {
  auto pipeline = passes::parse_pipeline(" cse, dce ");
  REQUIRE(pipeline.size() == 2);
  CHECK(pipeline[0].pass->name == "cse");
  CHECK(pipeline[1].pass->name == "dce");
  CHECK(passes::parse_pipeline("").empty());
}

TEST_CASE("the presets: -O0 runs nothing, -O1 the cleanups, -O2 every pass", "[passes][pipeline]") {
  CHECK(passes::preset_pipeline(0).empty());
  CHECK(passes::preset_pipeline(1) == "fold-constants,cse,dce");
  // -O2 runs every pass but lower-precision, which changes the results and comes with --dtype.
  auto o2 = passes::parse_pipeline(passes::preset_pipeline(2));
  CHECK(o2.size() == passes::all_passes().size() - 1);
  for (const passes::PipelineStep& step : o2) CHECK(step.pass->name != "lower-precision");
  CHECK(o2.back().pass->name == "plan-memory");
  CHECK_THROWS_AS(passes::preset_pipeline(3), std::invalid_argument);
}

TEST_CASE("an unknown pass or an empty item is an error listing the valid names", "[passes][pipeline]") {
  CHECK_THROWS_WITH(passes::parse_pipeline("cse,fuse-everything"),
                    Catch::Contains("unknown pass 'fuse-everything'") && Catch::Contains("fold-constants, cse, dce"));
  CHECK_THROWS_WITH(passes::parse_pipeline("cse,,dce"), Catch::Contains("item 1 is empty") && Catch::Contains("fuse-wkv"));
  CHECK_THROWS_WITH(passes::parse_pipeline("dce,"), Catch::Contains("item 1 is empty"));
}

}  // namespace rwkvc

namespace rwkvc {

TEST_CASE("a pass argument follows '=', and only lower-precision takes one", "[passes][pipeline]") {
  auto pipeline = passes::parse_pipeline("cse, lower-precision = bf16, lower-precision");
  REQUIRE(pipeline.size() == 3);
  CHECK(pipeline[1].argument == "bf16");
  CHECK(pipeline[2].argument.empty());
  CHECK_THROWS_WITH(passes::parse_pipeline("lower-precision=f8"),
                    Catch::Contains("'f8'") && Catch::Contains("f16 or bf16"));
  CHECK_THROWS_WITH(passes::parse_pipeline("cse=1"), Catch::Contains("pass 'cse' takes no argument"));
  CHECK(passes::precision_step(DType::f32).empty());
  CHECK(passes::precision_step(DType::bf16) == "lower-precision=bf16");
}

}  // namespace rwkvc
