// Prefill: the fast CPU path against the plain reference, and the identities of the spec.
#include "hilo/hisa.hpp"
#include "hisa_test_util.hpp"

namespace hilo {
namespace {

using test::Prefill;

Tensor run_flat(const Prefill& p, const hisa::IndexerOptions& opt, bool reference = false) {
  Tensor idx(DType::I32, {p.q.shape()[0], opt.topk});
  test::poison(idx);
  if (reference)
    hisa::reference::flat_prefill(p.inputs(), opt, idx);
  else
    hisa::flat_prefill(p.inputs(), opt, idx);
  return idx;
}

Tensor run_hisa(const Prefill& p, const hisa::HisaOptions& opt, bool reference = false) {
  Tensor idx(DType::I32, {p.q.shape()[0], opt.topk});
  test::poison(idx);
  if (reference)
    hisa::reference::hisa_prefill(p.inputs(), opt, idx);
  else
    hisa::hisa_prefill(p.inputs(), opt, idx);
  return idx;
}

hisa::HisaOptions small_hisa(int topk, int block, int kept, bool sorted) {
  hisa::HisaOptions o;
  o.topk = topk;
  o.block = block;
  o.blocks_kept = kept;
  o.sorted = sorted;
  o.threads = 2;
  return o;
}

TEST(HisaPrefill, FlatEqualsReferenceOnRaggedBatches) {
  std::mt19937_64 gen(test::fresh_seed());
  for (DType dtype : {DType::F8_E4M3, DType::BF16, DType::F32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Prefill p = test::random_prefill(gen, dtype, 6, 24, 4, 50, 900, 9);
    test::for_each_kernel([&] {
      for (bool sorted : {true, false}) {
        hisa::IndexerOptions opt;
        opt.topk = 64;
        opt.sorted = sorted;
        const Tensor want = run_flat(p, opt, true), got = run_flat(p, opt);
        for (int64_t r = 0; r < p.q.shape()[0]; ++r) {
          ASSERT_EQ(test::row_set(want, r), test::row_set(got, r)) << "row " << r;
          const int32_t* g = got.ptr<int32_t>() + r * opt.topk;
          if (sorted) {  // same order as the reference (by score, ties by position)
            EXPECT_TRUE(std::equal(g, g + opt.topk, want.ptr<int32_t>() + r * opt.topk)) << "row " << r;
          } else {  // ascending positions, then -1
            const int valid = static_cast<int>(test::row_set(got, r).size());
            EXPECT_TRUE(std::is_sorted(g, g + valid));
            EXPECT_TRUE(std::all_of(g + valid, g + opt.topk, [](int32_t x) { return x == -1; }));
          }
        }
      }
    });
  }
}

TEST(HisaPrefill, HisaEqualsReferenceWhenBlocksMustBeChosen) {
  std::mt19937_64 gen(test::fresh_seed());
  for (auto format : {hisa::PooledFormat::FP8, hisa::PooledFormat::BF16, hisa::PooledFormat::F32}) {
    SCOPED_TRACE(hisa::to_string(format));
    const DType dtype = format == hisa::PooledFormat::BF16 ? DType::BF16 : DType::F8_E4M3;
    const Prefill p = test::random_prefill(gen, dtype, 5, 20, 3, 300, 1500, 12);
    test::for_each_kernel([&] {
      hisa::HisaOptions opt = small_hisa(48, 16, 5, true);
      opt.pooled = format;
      EXPECT_TRUE(test::same_rows(run_hisa(p, opt, true), run_hisa(p, opt)));
    });
  }
}

TEST(HisaPrefill, BlocksStraddleSequenceBoundariesAndOddBlockSizes) {
  std::mt19937_64 gen(test::fresh_seed());
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 3, 16, 6, 37, 400, 6);
  for (int block : {7, 13, 64}) {
    hisa::HisaOptions opt = small_hisa(40, block, (40 + block - 1) / block + 2, true);
    EXPECT_TRUE(test::same_rows(run_hisa(p, opt, true), run_hisa(p, opt))) << "block " << block;
  }
}

TEST(HisaPrefill, ShortContextsReturnEveryVisibleToken) {
  std::mt19937_64 gen(test::fresh_seed());
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 4, 16, 3, 10, 64, 8);
  const hisa::HisaOptions opt = small_hisa(64, 8, 8, false);  // every ke - ks <= topk
  const Tensor flat = run_flat(p, opt), hisa_idx = run_hisa(p, opt);
  for (int64_t r = 0; r < p.q.shape()[0]; ++r) {
    std::set<int32_t> all;
    for (int32_t i = 0; i < p.ke.ptr<int32_t>()[r] - p.ks.ptr<int32_t>()[r]; ++i) all.insert(i);
    EXPECT_EQ(test::row_set(flat, r), all);
    EXPECT_EQ(test::row_set(hisa_idx, r), all);
  }
}

TEST(HisaPrefill, FewEligibleBlocksGiveExactlyTheFlatResult) {
  std::mt19937_64 gen(test::fresh_seed());
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 4, 32, 2, 500, 1000, 10);
  const hisa::HisaOptions opt = small_hisa(100, 64, 17, true);  // 17 * 64 >= 1000 + a straddled block
  EXPECT_TRUE(test::same_rows(run_flat(p, opt), run_hisa(p, opt)));
}

TEST(HisaPrefill, ResultsDoNotDependOnThreadsOrWindowSplitting) {
  std::mt19937_64 gen(test::fresh_seed());
  // Two query rows over 20K keys: few tiles, so the engine splits the keys into windows.
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 2, 16, 1, 20000, 20000, 2);
  hisa::HisaOptions opt = small_hisa(300, 32, 16, true);
  opt.threads = 1;
  const Tensor flat1 = run_flat(p, opt), hisa1 = run_hisa(p, opt);
  for (int threads : {2, 3, 8}) {
    opt.threads = threads;
    EXPECT_TRUE(test::same_rows(flat1, run_flat(p, opt))) << threads;
    EXPECT_TRUE(test::same_rows(hisa1, run_hisa(p, opt))) << threads;
  }
  EXPECT_TRUE(test::same_rows(flat1, run_flat(p, opt, true)));
  EXPECT_TRUE(test::same_rows(hisa1, run_hisa(p, opt, true)));
}

TEST(HisaPrefill, DeepSeekShapesOnLongerContext) {
  std::mt19937_64 gen(test::fresh_seed());
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 1, 3000, 3000, 3);
  hisa::HisaOptions opt = small_hisa(256, 64, 6, true);
  EXPECT_TRUE(test::same_rows(run_flat(p, opt, true), run_flat(p, opt)));
  EXPECT_TRUE(test::same_rows(run_hisa(p, opt, true), run_hisa(p, opt)));
}

TEST(HisaPrefill, PoolKeysIsTheBlockMean) {
  std::mt19937_64 gen(test::fresh_seed());
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 1, 8, 1, 100, 100, 1);
  const auto pooled = hisa::pool_keys(p.k, p.k_scale, 32, hisa::PooledFormat::F32);
  ASSERT_EQ(pooled.codes.shape(), (Shape{4, 8}));
  for (int b = 0; b < 4; ++b) {
    const int rows = b < 3 ? 32 : 4;  // 100 = 3 * 32 + 4: the tail block averages only the rows that exist
    for (int d = 0; d < 8; ++d) {
      float sum = 0;
      for (int n = b * 32; n < b * 32 + rows; ++n)
        sum += e4m3_to_f32(static_cast<uint8_t*>(p.k.view().data())[n * 8 + d]) * p.k_scale.ptr<float>()[n];
      EXPECT_EQ(pooled.codes.ptr<float>()[b * 8 + d], sum / rows);
    }
    EXPECT_EQ(pooled.scale.ptr<float>()[b], 1.0f);
  }
  // FP8 pooled rows are quantised like keys: amax / 448 scale.
  const auto fp8 = hisa::pool_keys(p.k, p.k_scale, 32, hisa::PooledFormat::FP8);
  for (int b = 0; b < 4; ++b) {
    float amax = 0;
    for (int d = 0; d < 8; ++d) amax = std::max(amax, std::fabs(pooled.codes.ptr<float>()[b * 8 + d]));
    EXPECT_EQ(fp8.scale.ptr<float>()[b], amax / 448.0f);
  }
}

TEST(HisaPrefill, BlockOnlyKeepsWholeBlocks) {
  std::mt19937_64 gen(test::fresh_seed());
  const Prefill p = test::random_prefill(gen, DType::F8_E4M3, 4, 16, 2, 800, 1200, 6);
  hisa::HisaOptions opt = small_hisa(128, 16, 8, false);
  Tensor idx(DType::I32, {p.q.shape()[0], opt.topk});
  test::poison(idx);
  hisa::block_only_prefill(p.inputs(), opt, idx);
  for (int64_t r = 0; r < p.q.shape()[0]; ++r) {
    const auto set = test::row_set(idx, r);
    const int32_t ks = p.ks.ptr<int32_t>()[r], ke = p.ke.ptr<int32_t>()[r];
    if (ke - ks <= opt.topk) {
      EXPECT_EQ(static_cast<int32_t>(set.size()), ke - ks);
      continue;
    }
    std::set<int64_t> blocks;
    for (int32_t x : set) blocks.insert((x + ks) / opt.block);
    EXPECT_EQ(blocks.size(), 8u);
    EXPECT_TRUE(blocks.count(ks / opt.block) && blocks.count((ke - 1) / opt.block));
    for (int64_t b : blocks)  // whole blocks, clipped to the visible range
      for (int64_t n = std::max<int64_t>(b * opt.block, ks); n < std::min<int64_t>((b + 1) * opt.block, ke); ++n)
        EXPECT_TRUE(set.count(static_cast<int32_t>(n - ks)));
  }
}

}  // namespace
}  // namespace hilo
