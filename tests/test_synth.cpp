#include "hilo/hisa.hpp"
#include "hilo/hisa_data.hpp"
#include "hisa_test_util.hpp"

namespace hilo {
namespace {

hisa::SynthConfig small_config(uint64_t seed) {
  hisa::SynthConfig c;
  c.context = 6000;
  c.queries = 40;
  c.heads = 8;
  c.dim = 64;
  c.seed = seed;
  c.needle_fraction = 1.0;
  return c;
}

TEST(Synth, DeterministicForASeed) {
  const auto a = hisa::make_prefill_problem(small_config(7)), b = hisa::make_prefill_problem(small_config(7));
  const auto c = hisa::make_prefill_problem(small_config(8));
  EXPECT_TRUE(test::same_rows(a.k, b.k));
  EXPECT_TRUE(test::same_rows(a.q, b.q));
  EXPECT_TRUE(test::same_rows(a.w, b.w));
  EXPECT_FALSE(test::same_rows(a.k, c.k));
  EXPECT_EQ(a.needles.size(), b.needles.size());
}

TEST(Synth, PrefillIsCausalAndFlatFindsTheNeedles) {
  const auto p = hisa::make_prefill_problem(small_config(test::fresh_seed()));
  for (int64_t i = 0; i < 40; ++i) {
    EXPECT_EQ(p.ks.ptr<int32_t>()[i], 0);
    EXPECT_EQ(p.ke.ptr<int32_t>()[i], 6000 - 40 + i + 1);
  }
  ASSERT_FALSE(p.needles.empty());
  hisa::IndexerOptions opt;
  opt.topk = 256;
  Tensor idx(DType::I32, {40, 256});
  hisa::flat_prefill(p.inputs(), opt, idx);
  EXPECT_EQ(hisa::needle_recall(idx, p.needles, std::vector<int64_t>(40, 0)), 1.0);
  // The attention sink (token 0) is in every row.
  for (int64_t r = 0; r < 40; ++r) EXPECT_TRUE(test::row_set(idx, r).count(0)) << r;
}

TEST(Synth, DecodeProblemHasShuffledPagesAndFullLengths) {
  auto cfg = small_config(test::fresh_seed());
  cfg.context = 1000;
  const auto d = hisa::make_decode_problem(cfg, 3, 2);
  EXPECT_EQ(d.kv_cache.shape(), (Shape{3 * 16, 64, 68}));
  std::set<int32_t> pages(d.block_table.ptr<int32_t>(), d.block_table.ptr<int32_t>() + 48);
  EXPECT_EQ(pages.size(), 48u);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(d.context_lens.ptr<int32_t>()[r], 1000);
  hisa::IndexerOptions opt;
  opt.topk = 64;
  Tensor pos(DType::I32, {6, 64});
  EXPECT_NO_THROW(hisa::flat_decode(d.inputs(), opt, {pos, {}}));
}

TEST(Synth, IouAndRecallMetrics) {
  Tensor a(DType::I32, {3, 4}), b(DType::I32, {3, 4});
  const int32_t av[] = {1, 2, 3, -1, -1, -1, -1, -1, 5, 6, 7, 8};
  const int32_t bv[] = {3, 2, 9, -1, -1, -1, -1, -1, 8, 7, 6, 5};
  std::copy(av, av + 12, a.ptr<int32_t>());
  std::copy(bv, bv + 12, b.ptr<int32_t>());
  const auto o = hisa::iou(a, b);
  EXPECT_DOUBLE_EQ(o.min, 0.5);  // {1,2,3} vs {2,3,9}: 2 / 4
  EXPECT_DOUBLE_EQ(o.mean, (0.5 + 1.0 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(hisa::needle_recall(a, {{0, 14}, {2, 16}}, {10, 0, 10}), 0.5);  // 14 - 10 = 4 is not in row 0
  Tensor c(DType::I32, {2, 4});
  EXPECT_HILO_ERROR(hisa::iou(a, c), "a has 3 rows but b has 2");
}

TEST(Synth, RefusesBadConfigs) {
  auto cfg = small_config(1);
  cfg.queries = 7000;
  EXPECT_HILO_ERROR(hisa::make_prefill_problem(cfg), "queries = 7000");
  cfg = small_config(1);
  cfg.dtype = DType::I32;
  EXPECT_HILO_ERROR(hisa::make_prefill_problem(cfg), "dtype I32");
}

}  // namespace
}  // namespace hilo
