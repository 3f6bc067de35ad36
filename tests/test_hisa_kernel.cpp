// The scoring kernels and key packing against reference::score, bit for bit.
#include "hilo/hisa.hpp"
#include "hisa/key_source.hpp"
#include "hisa/score_kernel.hpp"
#include "hisa_test_util.hpp"

namespace hilo {
namespace {

using namespace hisa::detail;

TEST(HisaKernel, ScoresEqualReferenceBitForBit) {
  std::mt19937_64 gen(test::fresh_seed());
  for (int trial = 0; trial < 60; ++trial) {
    const int H = 1 + static_cast<int>(gen() % 70), D = 1 + static_cast<int>(gen() % 160);
    const int groups = 1 + static_cast<int>(gen() % 7);
    const DType dtype = std::array{DType::F8_E4M3, DType::BF16, DType::F32}[trial % 3];
    Tensor q = test::random_tensor(dtype, {H, D}, gen), w = test::random_tensor(DType::F32, {H}, gen);
    Tensor k = test::random_tensor(dtype, {groups * kGroup - 5, D}, gen);  // last group partly padding
    Tensor s = test::random_tensor(DType::F32, {k.shape()[0]}, gen);
    std::vector<float> qf(H * D), panel(groups * D * kGroup), scales(groups * kGroup);
    widen_to_f32(q.view().data(), dtype, H * D, qf.data());
    DenseKeySource src(k.view().data(), dtype, k.shape()[0], D, s.ptr<float>());
    src.pack(0, groups, panel.data(), scales.data());
    test::for_each_kernel([&] {
      std::vector<float> out(groups * kGroup, std::nanf(""));
      score_kernel()(qf.data(), w.ptr<float>(), H, D, panel.data(), scales.data(), groups, out.data());
      std::vector<float> key(D);
      for (int64_t n = 0; n < k.shape()[0]; ++n) {
        widen_to_f32(static_cast<uint8_t*>(k.view().data()) + n * D * dtype_size(dtype), dtype, D, key.data());
        const float want = hisa::reference::score(qf.data(), w.ptr<float>(), H, D, key.data(), s.ptr<float>()[n]);
        ASSERT_EQ(std::bit_cast<uint32_t>(out[n]), std::bit_cast<uint32_t>(want))
            << "H=" << H << " D=" << D << " key " << n << ": " << out[n] << " vs " << want;
      }
      for (int64_t n = k.shape()[0]; n < groups * kGroup; ++n) EXPECT_EQ(out[n], 0.0f);  // padding scores 0
    });
  }
}

TEST(HisaKernel, PagedPackingReadsThroughTheBlockTable) {
  std::mt19937_64 gen(test::fresh_seed());
  const int D = 40;
  test::Decode d = test::random_decode(gen, DType::F8_E4M3, 2, D, 1, 1, 150, 150, false);
  const auto* table = d.block_table.ptr<int32_t>();
  PagedKeySource src(static_cast<uint8_t*>(d.kv_cache.view().data()), D, table, 150);
  std::vector<float> panel(10 * D * kGroup), scales(10 * kGroup);
  src.pack(0, 10, panel.data(), scales.data());
  const auto* cache = static_cast<uint8_t*>(d.kv_cache.view().data());
  for (int pos = 0; pos < 160; ++pos) {
    const int g = pos / kGroup, lane = pos % kGroup;
    if (pos >= 150) {
      EXPECT_EQ(scales[g * kGroup + lane], 0.0f);
      continue;
    }
    const uint8_t* page = cache + static_cast<int64_t>(table[pos / 64]) * 64 * (D + 4);
    float want_scale;
    std::memcpy(&want_scale, page + 64 * D + (pos % 64) * 4, 4);
    EXPECT_EQ(scales[g * kGroup + lane], want_scale);
    for (int dd = 0; dd < D; ++dd)
      EXPECT_EQ(panel[(g * D + dd) * kGroup + lane], e4m3_to_f32(page[(pos % 64) * D + dd]));
  }
}

}  // namespace
}  // namespace hilo
