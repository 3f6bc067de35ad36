#include <cstdlib>
#include <utility>

#include "core/env.hpp"
#include "hilo/cuda.hpp"
#include "test_util.hpp"

TEST(Cuda, DeviceQueriesWorkWithOrWithoutAGpu) {
  const int n = hilo::cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_TRUE(hilo::cuda::device_description(n).empty());  // past the last device
  if (n == 0) GTEST_SKIP() << "no CUDA device (built with CUDA: " << hilo::cuda::built_with_cuda() << ")";
  EXPECT_FALSE(hilo::cuda::device_description(0).empty());
}

// The kernels' tuning variables (core/env.hpp): only a whole integer in range counts; anything else, unset included,
// is the fallback (an unset HILO_GEMM_WGMMA once read as 0, "never", and kept the wgmma GEMM off).
TEST(Cuda, EnvOverrideTakesOnlyWholeIntegersInRange) {
  constexpr const char* kName = "HILO_TEST_ENV_OVERRIDE";
  struct Unset {
    ~Unset() { unsetenv(kName); }
  } unset;
  unsetenv(kName);
  EXPECT_EQ(hilo::env_override(kName, 0, 1, -1), -1);
  const std::pair<const char*, int> cases[] = {{"", -1},  {"0", 0},   {"1", 1},    {"2", -1}, {"-1", -1},
                                               {"1x", -1}, {"x", -1}, {" 1", 1},  {"1 ", -1}};
  for (const auto& [value, want] : cases) {
    setenv(kName, value, 1);
    EXPECT_EQ(hilo::env_override(kName, 0, 1, -1), want) << "'" << value << "'";
  }
  setenv(kName, "64", 1);
  EXPECT_EQ(hilo::env_override(kName, 1, 64, 0), 64);
  setenv(kName, "65", 1);
  EXPECT_EQ(hilo::env_override(kName, 1, 64, 0), 0);
}

// The on/off switches (HILO_PDL, HILO_GEMM_CLUSTER, ...): unset is the fallback, "0" off, any other integer on.
TEST(Cuda, EnvFlagIsTheFallbackOnlyWhenUnset) {
  constexpr const char* kName = "HILO_TEST_ENV_FLAG";
  struct Unset {
    ~Unset() { unsetenv(kName); }
  } unset;
  unsetenv(kName);
  EXPECT_TRUE(hilo::env_flag(kName, true));
  EXPECT_FALSE(hilo::env_flag(kName, false));
  setenv(kName, "0", 1);
  EXPECT_FALSE(hilo::env_flag(kName, true));
  setenv(kName, "2", 1);
  EXPECT_TRUE(hilo::env_flag(kName, false));
}
