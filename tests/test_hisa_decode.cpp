// Decode over the paged cache: fast vs reference, decode == prefill, the incremental pooled cache, next_n.
#include "hilo/hisa.hpp"
#include "hisa_test_util.hpp"

namespace hilo {
namespace {

using test::Decode;

struct DecodeOut {
  Tensor positions, slots;
};

DecodeOut outputs(const Decode& d, int topk) {
  const int64_t rows = d.q.shape()[0] * d.q.shape()[1];
  DecodeOut o{Tensor(DType::I32, {rows, topk}), Tensor(DType::I32, {rows, topk})};
  test::poison(o.positions);
  test::poison(o.slots);
  return o;
}

hisa::HisaOptions small_hisa() {
  hisa::HisaOptions o;
  o.topk = 40;
  o.block = 16;
  o.blocks_kept = 5;
  o.sorted = true;
  o.threads = 2;
  return o;
}

TEST(HisaDecode, FastEqualsReferenceForBothOutputsAndLengthForms) {
  std::mt19937_64 gen(test::fresh_seed());
  for (bool per_token : {false, true}) {
    for (int next_n : {1, 2, 4}) {
      SCOPED_TRACE(::testing::Message() << "next_n " << next_n << " per-token lens " << per_token);
      const Decode d = test::random_decode(gen, DType::F8_E4M3, 4, 24, 5, next_n, 1, 700, per_token);
      const hisa::HisaOptions opt = small_hisa();
      test::for_each_kernel([&] {
        DecodeOut want = outputs(d, opt.topk), got = outputs(d, opt.topk);
        hisa::reference::flat_decode(d.inputs(), opt, {want.positions, want.slots});
        hisa::flat_decode(d.inputs(), opt, {got.positions, got.slots});
        EXPECT_TRUE(test::same_rows(want.positions, got.positions));
        EXPECT_TRUE(test::same_rows(want.slots, got.slots));

        hisa::PooledKeyCache cache(24, opt.block, opt.pooled);
        hisa::reference::hisa_decode(d.inputs(), opt, {want.positions, want.slots});
        hisa::hisa_decode(d.inputs(), cache, opt, {got.positions, got.slots});
        EXPECT_TRUE(test::same_rows(want.positions, got.positions));
        EXPECT_TRUE(test::same_rows(want.slots, got.slots));
      });
    }
  }
}

TEST(HisaDecode, SlotsAreGlobalPageOffsets) {
  std::mt19937_64 gen(test::fresh_seed());
  const Decode d = test::random_decode(gen, DType::BF16, 2, 16, 3, 2, 100, 300, false);
  hisa::IndexerOptions opt;
  opt.topk = 32;
  DecodeOut o = outputs(d, opt.topk);
  hisa::flat_decode(d.inputs(), opt, {o.positions, o.slots});
  const int64_t max_pages = d.block_table.shape()[1];
  for (int64_t row = 0; row < 6; ++row) {
    for (int i = 0; i < opt.topk; ++i) {
      const int32_t pos = o.positions.ptr<int32_t>()[row * opt.topk + i];
      const int32_t slot = o.slots.ptr<int32_t>()[row * opt.topk + i];
      if (pos < 0) {
        EXPECT_EQ(slot, -1);
        continue;
      }
      EXPECT_EQ(slot, d.block_table.ptr<int32_t>()[(row / 2) * max_pages + pos / 64] * 64 + pos % 64);
    }
  }
  // Either output may be left out.
  DecodeOut only = outputs(d, opt.topk);
  hisa::flat_decode(d.inputs(), opt, {{}, only.slots});
  EXPECT_TRUE(test::same_rows(only.slots, o.slots));
}

// The keys of request r as a dense [L, D] fp8 tensor with scales, read through the block table.
test::Prefill as_prefill(const Decode& d, int64_t r, int64_t length, int64_t row) {
  const int64_t D = d.q.shape()[3], H = d.q.shape()[2], max_pages = d.block_table.shape()[1];
  test::Prefill p{Tensor(d.q.dtype(), {1, H, D}), Tensor(DType::F32, {1, H}), Tensor(DType::F8_E4M3, {length, D}),
                  Tensor(DType::F32, {length}), Tensor(DType::I32, {1}), Tensor(DType::I32, {1})};
  const auto* cache = static_cast<const uint8_t*>(d.kv_cache.view().data());
  for (int64_t pos = 0; pos < length; ++pos) {
    const uint8_t* page = cache + d.block_table.ptr<int32_t>()[r * max_pages + pos / 64] * 64 * (D + 4);
    std::memcpy(static_cast<uint8_t*>(p.k.view().data()) + pos * D, page + (pos % 64) * D, D);
    std::memcpy(p.k_scale.ptr<float>() + pos, page + 64 * D + (pos % 64) * 4, 4);
  }
  const std::size_t qbytes = H * D * dtype_size(d.q.dtype());
  std::memcpy(p.q.view().data(), static_cast<const uint8_t*>(d.q.view().data()) + row * qbytes, qbytes);
  std::memcpy(p.w.view().data(), d.w.ptr<float>() + row * H, H * 4);
  return p;
}

TEST(HisaDecode, DecodeEqualsPrefillOnTheSameTokens) {
  std::mt19937_64 gen(test::fresh_seed());
  const int next_n = 3;
  const Decode d = test::random_decode(gen, DType::F8_E4M3, 3, 32, 3, next_n, 200, 900, false);
  hisa::HisaOptions opt = small_hisa();
  DecodeOut flat = outputs(d, opt.topk), hisa_out = outputs(d, opt.topk);
  hisa::flat_decode(d.inputs(), opt, {flat.positions, {}});
  hisa::PooledKeyCache cache(32, opt.block, opt.pooled);
  hisa::hisa_decode(d.inputs(), cache, opt, {hisa_out.positions, {}});
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t L = d.context_lens.ptr<int32_t>()[r];
    for (int j = 0; j < next_n; ++j) {
      const int64_t row = r * next_n + j;
      test::Prefill p = as_prefill(d, r, L, row);
      p.ks.ptr<int32_t>()[0] = 0;
      p.ke.ptr<int32_t>()[0] = static_cast<int32_t>(L - next_n + j + 1);  // next_n visibility
      Tensor a(DType::I32, {1, opt.topk}), b(DType::I32, {1, opt.topk});
      hisa::flat_prefill(p.inputs(), opt, a);
      hisa::hisa_prefill(p.inputs(), opt, b);
      EXPECT_TRUE(std::equal(a.ptr<int32_t>(), a.ptr<int32_t>() + opt.topk, flat.positions.ptr<int32_t>() + row * opt.topk));
      EXPECT_TRUE(std::equal(b.ptr<int32_t>(), b.ptr<int32_t>() + opt.topk, hisa_out.positions.ptr<int32_t>() + row * opt.topk));
      for (int i = 0; i < opt.topk; ++i)  // nothing past the query's own position
        EXPECT_LT(flat.positions.ptr<int32_t>()[row * opt.topk + i], L - next_n + j + 1);
    }
  }
}

TEST(HisaDecode, IncrementalPooledCacheEqualsRebuiltCache) {
  std::mt19937_64 gen(test::fresh_seed());
  const int D = 20;
  const Decode d = test::random_decode(gen, DType::F8_E4M3, 1, D, 2, 1, 1000, 1000, false);
  const int64_t max_pages = d.block_table.shape()[1];
  for (auto format : {hisa::PooledFormat::FP8, hisa::PooledFormat::BF16, hisa::PooledFormat::F32}) {
    hisa::PooledKeyCache cache(D, 48, format);
    for (int r = 0; r < 2; ++r) {
      int64_t len = 0;
      while (len < 1000) {
        len = std::min<int64_t>(1000, len + 1 + gen() % 130);  // random appends, often mid-block
        cache.update(r, d.kv_cache, d.block_table.ptr<int32_t>() + r * max_pages, max_pages, len);
        const test::Prefill p = as_prefill(d, r, len, 0);
        const hisa::PooledKeys want = hisa::pool_keys(p.k, p.k_scale, 48, format);
        const TensorView codes = cache.codes(r), scales = cache.scales(r);
        ASSERT_EQ(codes.shape(), want.codes.shape());
        ASSERT_EQ(std::memcmp(codes.data(), want.codes.view().data(), want.codes.nbytes()), 0) << "len " << len;
        ASSERT_EQ(std::memcmp(scales.data(), want.scale.view().data(), want.scale.nbytes()), 0) << "len " << len;
      }
    }
    // A shorter length restarts the request (the slot was reused).
    cache.update(0, d.kv_cache, d.block_table.ptr<int32_t>(), max_pages, 100);
    EXPECT_EQ(cache.length(0), 100);
    EXPECT_EQ(cache.num_blocks(0), 3);
    cache.reset(1);
    EXPECT_EQ(cache.num_blocks(1), 0);
  }
}

TEST(HisaDecode, CacheMustMatchTheCall) {
  std::mt19937_64 gen(test::fresh_seed());
  const Decode d = test::random_decode(gen, DType::F8_E4M3, 2, 16, 1, 1, 100, 100, false);
  hisa::HisaOptions opt = small_hisa();
  DecodeOut o = outputs(d, opt.topk);
  hisa::PooledKeyCache wrong_block(16, 32, opt.pooled);
  EXPECT_HILO_ERROR(hisa::hisa_decode(d.inputs(), wrong_block, opt, {o.positions, {}}), "does not match the call");
}

}  // namespace
}  // namespace hilo
