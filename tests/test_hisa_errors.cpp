// Bad input gets a clear error that names the argument, in every path (fast and reference share the checks).
#include "hilo/error.hpp"
#include "hilo/hisa.hpp"
#include "hisa_test_util.hpp"

namespace hilo {
namespace {

using test::Prefill;

class HisaErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 gen(test::fresh_seed());
    p = test::random_prefill(gen, DType::F8_E4M3, 2, 8, 2, 100, 200, 3);
    idx = Tensor(DType::I32, {6, 16});
    opt.topk = 16;
    opt.block = 8;
    opt.blocks_kept = 4;
  }
  // Expects every prefill entry point to refuse `in` with `message`.
  void expect_refused(const hisa::PrefillInputs& in, const std::string& message) {
    EXPECT_HILO_ERROR(hisa::flat_prefill(in, opt, idx), message);
    EXPECT_HILO_ERROR(hisa::hisa_prefill(in, opt, idx), message);
    EXPECT_HILO_ERROR(hisa::reference::flat_prefill(in, opt, idx), message);
    EXPECT_HILO_ERROR(hisa::reference::hisa_prefill(in, opt, idx), message);
  }
  Prefill p;
  Tensor idx;
  hisa::HisaOptions opt;
};

TEST_F(HisaErrors, ShapesAndDtypes) {
  auto in = p.inputs();
  Tensor k_short(DType::F8_E4M3, {p.k.shape()[0], 7});
  in.k = k_short;
  expect_refused(in, "k has shape");
  in = p.inputs();
  Tensor w_wrong(DType::F32, {6, 3});
  in.w = w_wrong;
  expect_refused(in, "w has shape [6, 3], expected [6, 2]");
  in = p.inputs();
  Tensor w_bf16(DType::BF16, {6, 2});
  in.w = w_bf16;
  expect_refused(in, "w has dtype BF16, expected one of F32");
  in = p.inputs();
  Tensor q_i8(DType::I8, {6, 2, 8});
  in.q = q_i8;
  expect_refused(in, "q has dtype I8");
  in = p.inputs();
  Tensor ks_short(DType::I32, {5});
  in.ks = ks_short;
  expect_refused(in, "ks has shape [5], expected [6]");
  in = p.inputs();
  TensorView strided(p.q.view().data(), DType::F8_E4M3, {6, 2, 4}, {16, 8, 2});
  in.q = strided;
  expect_refused(in, "q with shape [6, 2, 4] must be contiguous");
  Tensor idx_wrong(DType::I32, {6, 15});
  EXPECT_HILO_ERROR(hisa::flat_prefill(p.inputs(), opt, idx_wrong), "idx has shape [6, 15], expected [6, 16]");
}

TEST_F(HisaErrors, RangesAndSizes) {
  p.ks.ptr<int32_t>()[2] = p.ke.ptr<int32_t>()[2] + 1;
  expect_refused(p.inputs(), "ks[2] =");
  p.ks.ptr<int32_t>()[2] = 0;
  p.ke.ptr<int32_t>()[4] = static_cast<int32_t>(p.k.shape()[0] + 1);
  expect_refused(p.inputs(), "ke[4] =");
  p.ke.ptr<int32_t>()[4] = 1;
  p.ks.ptr<int32_t>()[0] = -1;
  expect_refused(p.inputs(), "ks[0] = -1 is negative");
  p.ks.ptr<int32_t>()[0] = 0;
  Tensor q_empty_heads(DType::F8_E4M3, {6, 0, 8});
  auto in = p.inputs();
  in.q = q_empty_heads;
  expect_refused(in, "heads and head dim must be positive");
  opt.topk = 0;
  EXPECT_HILO_ERROR(hisa::flat_prefill(p.inputs(), opt, idx), "topk = 0 must be positive");
}

TEST_F(HisaErrors, HisaOptions) {
  opt.blocks_kept = 1;
  EXPECT_HILO_ERROR(hisa::hisa_prefill(p.inputs(), opt, idx), "blocks_kept = 1 must be at least 2");
  opt.blocks_kept = 2;  // 2 * 8 = 16 = topk: fine; 15 is not
  EXPECT_NO_THROW(hisa::hisa_prefill(p.inputs(), opt, idx));
  opt.block = 7;
  EXPECT_HILO_ERROR(hisa::hisa_prefill(p.inputs(), opt, idx), "blocks_kept * block = 2 * 7 is smaller than topk = 16");
  EXPECT_HILO_ERROR(hisa::reference::hisa_prefill(p.inputs(), opt, idx), "is smaller than topk");
  opt.block = 0;
  EXPECT_HILO_ERROR(hisa::hisa_prefill(p.inputs(), opt, idx), "block = 0 must be positive");
  opt.block = 8;
  opt.blocks_kept = 4;  // block-only needs blocks_kept * block <= topk
  EXPECT_HILO_ERROR(hisa::block_only_prefill(p.inputs(), opt, idx), "must fit in topk");
  opt.threads = -1;
  EXPECT_HILO_ERROR(hisa::flat_prefill(p.inputs(), opt, idx), "threads = -1");
}

TEST_F(HisaErrors, NonFiniteInputs) {
  static_cast<uint8_t*>(p.q.view().data())[17] = 0x7F;  // fp8 NaN
  expect_refused(p.inputs(), "q holds a non-finite value (nan) at [1, 0, 1]");
  static_cast<uint8_t*>(p.q.view().data())[17] = 0x30;
  p.w.ptr<float>()[3] = INFINITY;
  expect_refused(p.inputs(), "w holds a non-finite value (inf) at [1, 1]");
  p.w.ptr<float>()[3] = 1;
  p.k_scale.ptr<float>()[5] = std::nanf("");
  expect_refused(p.inputs(), "k_scale holds a non-finite value");
  p.k_scale.ptr<float>()[5] = 1;
  static_cast<uint8_t*>(p.k.view().data())[9] = 0xFF;
  expect_refused(p.inputs(), "k holds a non-finite value");
  opt.check_finite = false;  // documented opt-out: the caller vouches for the inputs
  EXPECT_NO_THROW(hisa::flat_prefill(p.inputs(), opt, idx));
  Tensor kb(DType::BF16, {p.k.shape()[0], 8});
  std::fill(static_cast<uint16_t*>(kb.view().data()), static_cast<uint16_t*>(kb.view().data()) + kb.numel(), 0x3F80);
  static_cast<uint16_t*>(kb.view().data())[3] = 0x7F80;  // bf16 +Inf
  auto in = p.inputs();
  in.k = kb;
  opt.check_finite = true;
  expect_refused(in, "k holds a non-finite value (inf) at [0, 3]");
}

TEST(HisaDecodeErrors, CacheTableAndLengths) {
  std::mt19937_64 gen(test::fresh_seed());
  test::Decode d = test::random_decode(gen, DType::F8_E4M3, 2, 16, 2, 1, 100, 200, false);
  hisa::HisaOptions opt;
  opt.topk = 16;
  opt.block = 16;
  opt.blocks_kept = 4;
  Tensor pos(DType::I32, {2, 16});
  hisa::PooledKeyCache cache(16, 16);
  auto refused = [&](const hisa::DecodeInputs& in, const std::string& message) {
    EXPECT_HILO_ERROR(hisa::flat_decode(in, opt, {pos, {}}), message);
    EXPECT_HILO_ERROR(hisa::hisa_decode(in, cache, opt, {pos, {}}), message);
    EXPECT_HILO_ERROR(hisa::reference::flat_decode(in, opt, {pos, {}}), message);
    EXPECT_HILO_ERROR(hisa::reference::hisa_decode(in, opt, {pos, {}}), message);
  };
  const int32_t saved = d.block_table.ptr<int32_t>()[1];
  d.block_table.ptr<int32_t>()[1] = 999;
  refused(d.inputs(), "block_table[0, 1] = 999 points outside the cache's");
  d.block_table.ptr<int32_t>()[1] = saved;
  d.context_lens.ptr<int32_t>()[1] = 100000;
  refused(d.inputs(), "context_lens[1] = 100000 is outside");
  d.context_lens.ptr<int32_t>()[1] = 100;
  Tensor bad_cache(DType::U8, {4, 64, 16});
  auto in = d.inputs();
  in.kv_cache = bad_cache;
  refused(in, "kv_cache has shape [4, 64, 16], expected [num_pages, 64, 20]");
  Tensor lens2(DType::I32, {2, 3});
  in = d.inputs();
  in.context_lens = lens2;
  refused(in, "context_lens has shape [2, 3], expected [2, 1]");
  static_cast<uint8_t*>(d.kv_cache.view().data())[d.block_table.ptr<int32_t>()[0] * 64 * 20 + 5] = 0x7F;
  refused(d.inputs(), "kv_cache holds a non-finite key or scale at request 0, position 0");
  EXPECT_HILO_ERROR(hisa::flat_decode(d.inputs(), opt, {}), "neither positions nor slots");
}

}  // namespace
}  // namespace hilo
