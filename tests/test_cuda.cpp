#include "hilo/cuda.hpp"
#include "test_util.hpp"

TEST(Cuda, DeviceQueriesWorkWithOrWithoutAGpu) {
  const int n = hilo::cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_TRUE(hilo::cuda::device_description(n).empty());  // past the last device
  if (n == 0) GTEST_SKIP() << "no CUDA device (built with CUDA: " << hilo::cuda::built_with_cuda() << ")";
  EXPECT_FALSE(hilo::cuda::device_description(0).empty());
}
