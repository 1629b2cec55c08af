// What the user said the kernel carries (a selected series profile, --require-feature): one case
// that fails on every such feature the probe found missing, even where no other case needs it.

#include <gtest/gtest.h>

#include <string>

#include "fixtures/probe.h"

namespace gmem {
namespace {

// Every feature the run requires is present.
TEST(RequiredFeatures, EveryRequiredFeatureIsPresent) {
  std::string missing;
  int required = 0;
  for (const Feature& f : ProbedFeatures().all()) {
    if (f.required_by.empty()) continue;
    ++required;
    if (auto why = ProbedFeatures().Why(f.name)) missing += "\n  " + why->text;
  }
  if (required == 0) GTEST_SKIP() << "no feature required (no --series-profile, --require-feature, "
                                     "GMEMTEST_SERIES_PROFILES or GMEMTEST_REQUIRE_FEATURES)";
  EXPECT_TRUE(missing.empty()) << "required features missing:" << missing;
}

}  // namespace
}  // namespace gmem
