// The CUDA indexers against the CPU (whose fast path equals the reference bit for bit). Skipped without a GPU.
// Exact where the GPU computes the same function (top-k, pooling, identities); otherwise differences are allowed
// only between keys whose exact scores tie with the k-th score within the tensor cores' rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_test_util.hpp"
#include "hilo/hisa_cuda.hpp"
#include "hilo/hisa_data.hpp"
#include "hilo/topk.hpp"
#include "hisa/cuda/launch.hpp"
#include "hisa_test_util.hpp"

namespace hilo {
namespace {

using test::DeviceTensor;

constexpr double kRelTol = 2e-3;  // of the row's largest |score|: fp8 MMA accumulation order and precision

// Every call's scratch is handed out filled with 0x7F bytes (f32 3.4e38, above any score): a kernel that reads an
// entry no kernel of the call wrote (the candidate buffers have no NaN fill) puts it among the winners.
class HisaCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    hisa::cuda_detail::set_scratch_poison(true);
  }
  void TearDown() override { hisa::cuda_detail::set_scratch_poison(false); }
};

// Exact CPU scores of one query row against keys, for explaining differences.
struct RowScorer {
  std::vector<float> q, key;
  const float* w;
  int H, D;
  const uint8_t* k;
  const float* k_scale;
  RowScorer(const Tensor& qt, int64_t row, const float* w_row, const uint8_t* keys, const float* scales)
      : w(w_row), H(static_cast<int>(qt.shape()[qt.shape().size() - 2])), D(static_cast<int>(qt.shape().back())),
        k(keys), k_scale(scales) {
    q.resize(static_cast<std::size_t>(H) * D);
    convert(static_cast<const uint8_t*>(qt.view().data()) + row * H * D, DType::F8_E4M3, q.data(), DType::F32, H * D);
    key.resize(D);
  }
  double operator()(int64_t n) {
    convert(k + n * D, DType::F8_E4M3, key.data(), DType::F32, D);
    return hisa::reference::score(q.data(), w, H, D, key.data(), k_scale[n]);
  }
};

// Compares prefill index tensors row by row (positions relative to ks); returns unexplained differences.
int64_t compare_prefill(const test::Prefill& p, const Tensor& gpu, const Tensor& cpu, int64_t& ties) {
  const int64_t S = p.q.shape()[0], k = gpu.shape()[1];
  int64_t bad = 0;
  for (int64_t r = 0; r < S; ++r) {
    const int32_t ks = p.ks.ptr<int32_t>()[r];
    std::set<int32_t> g, c;
    for (int64_t i = 0; i < k; ++i) {
      if (gpu.ptr<int32_t>()[r * k + i] >= 0) {
        EXPECT_TRUE(g.insert(gpu.ptr<int32_t>()[r * k + i] + ks).second);
      }
      if (cpu.ptr<int32_t>()[r * k + i] >= 0) c.insert(cpu.ptr<int32_t>()[r * k + i] + ks);
    }
    EXPECT_EQ(g.size(), c.size()) << "row " << r;
    if (g == c) continue;
    RowScorer score(p.q, r, p.w.ptr<float>() + r * p.q.shape()[1], static_cast<const uint8_t*>(p.k.view().data()),
                    p.k_scale.ptr<float>());
    double kth = INFINITY, max_abs = 0;
    for (int32_t x : c) {
      const double s = score(x);
      kth = std::min(kth, s);
      max_abs = std::max(max_abs, std::fabs(s));
    }
    bad += test::unexplained_differences(g, c, score, kth, max_abs, kRelTol, ties);
  }
  return bad;
}

struct Outputs {
  Tensor flat, hisa_idx;
};

Outputs run_gpu(const test::Prefill& p, const hisa::HisaOptions& opt) {
  DeviceTensor q(p.q), w(p.w), k(p.k), ks(p.k_scale), lo(p.ks), hi(p.ke);
  const hisa::PrefillInputs in{q, w, k, ks, lo, hi};
  DeviceTensor flat(DType::I32, {p.q.shape()[0], opt.topk}), hidx(DType::I32, {p.q.shape()[0], opt.topk});
  hisa::cuda::flat_prefill(in, opt, flat);
  hisa::cuda::hisa_prefill(in, opt, hidx);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return {flat.to_host(), hidx.to_host()};
}

Outputs run_cpu(const test::Prefill& p, const hisa::HisaOptions& opt) {
  Outputs o{Tensor(DType::I32, {p.q.shape()[0], opt.topk}), Tensor(DType::I32, {p.q.shape()[0], opt.topk})};
  hisa::flat_prefill(p.inputs(), opt, o.flat);
  hisa::hisa_prefill(p.inputs(), opt, o.hisa_idx);
  return o;
}

test::Prefill from_problem(hisa::PrefillProblem&& pp) {
  return test::Prefill{std::move(pp.q), std::move(pp.w), std::move(pp.k), std::move(pp.k_scale), std::move(pp.ks),
                       std::move(pp.ke)};
}

// The GPU top-k of every row of `scores` equals the CPU's for each k, both orders and every strategy (one CTA per
// row, 16K segments and a merge, clusters of 3, 4 and 8 CTAs per row, all with the general kernel; the short-row
// kernel where it applies; automatic (the tiny-row kernel for rows of at most 1024), with and without 16-byte loads);
// the output is poisoned before each run. Rows
// of a length that is not a multiple of 4 start on 16-byte boundaries only every fourth row, so such shapes take
// the vector and the element-wise loads in one launch.
void expect_topk_like_cpu(const Tensor& scores, std::initializer_list<int> ks) {
  const int64_t rows = scores.shape()[0];
  for (bool sorted : {false, true}) {
    for (int k : ks) {
      Tensor cpu(DType::I32, {rows, k});
      topk_rows(scores, k, cpu, {}, {}, {sorted, 0});
      DeviceTensor s(scores), out(DType::I32, {rows, k});
      for (const auto& [segment, cluster, short_rows, tiny_rows, vector] :
           std::vector<std::tuple<int64_t, int, bool, bool, bool>>{
               {0, 1, false, false, true}, {16384, 1, false, false, true}, {0, 3, false, false, true},
               {0, 4, false, false, true}, {0, 8, false, false, true}, {0, 1, true, false, true},
               {-1, -1, true, true, true}, {-1, -1, true, true, false}}) {
        const auto saved = hisa::cuda_detail::topk_tuning();
        hisa::cuda_detail::topk_tuning().segment = segment;
        hisa::cuda_detail::topk_tuning().cluster = cluster;
        hisa::cuda_detail::topk_tuning().short_rows = short_rows;
        hisa::cuda_detail::topk_tuning().tiny_rows = tiny_rows;
        hisa::cuda_detail::topk_tuning().vector_loads = vector;
        out.poison();
        hisa::cuda::topk_rows(s, k, out, sorted);
        hisa::cuda_detail::topk_tuning() = saved;
        EXPECT_TRUE(test::same_rows(out.to_host(), cpu))
            << "k " << k << " sorted " << sorted << " segment " << segment << " cluster " << cluster << " short rows "
            << short_rows << " tiny rows " << tiny_rows << " vector loads " << vector << " length "
            << scores.shape()[1];
      }
    }
  }
}

TEST_F(HisaCuda, TopkRowsEqualsCpu) {
  std::mt19937_64 gen(test::fresh_seed());
  for (const int64_t len : {20000, 30001, 100000}) {  // one pass (aligned rows, mixed); segments and a merge pass
    const int64_t rows = 7;
    Tensor scores(DType::F32, {rows, len});
    std::normal_distribution<float> dist;
    for (int64_t i = 0; i < rows * len; ++i) {
      const uint64_t r = gen() % 10;
      scores.ptr<float>()[i] = r == 0 ? 1.5f : r == 1 ? std::nanf("") : r == 2 ? -0.0f : dist(gen);
    }
    expect_topk_like_cpu(scores, {1, 100, 2048, 4096});
  }
}

// Rows whose top bins hold more than the kernel's candidate buffer: a narrow band of values (the second and third
// digits narrow it), a few distinct values and a constant row (the last digit takes equal keys by position).
TEST_F(HisaCuda, TopkRowsWithCrowdedBinsEqualCpu) {
  std::mt19937_64 gen(test::fresh_seed());
  const int64_t rows = 4, len = 50000;
  Tensor scores(DType::F32, {rows, len});
  std::uniform_real_distribution<float> band(1.0f, 1.05f);
  for (int64_t i = 0; i < len; ++i) {
    float* r = scores.ptr<float>();
    r[i] = band(gen);
    r[len + i] = static_cast<float>(gen() % 3);
    r[2 * len + i] = 0.25f;
    r[3 * len + i] = gen() % 50 == 0 ? std::nanf("") : (gen() % 2 ? 0.25f : band(gen));
  }
  expect_topk_like_cpu(scores, {100, 2048, 4096});
}

// Rows of each length: random scores with NaN and -0, a narrow band, a few distinct values, a constant row, and k at,
// below and above the number of candidates, against the CPU with every strategy.
void expect_short_rows_like_cpu(std::initializer_list<int64_t> lengths) {
  std::mt19937_64 gen(test::fresh_seed());
  for (const int64_t len : lengths) {
    const int64_t rows = 5;
    Tensor scores(DType::F32, {rows, len});
    std::normal_distribution<float> dist;
    std::uniform_real_distribution<float> band(1.0f, 1.001f);
    float* x = scores.ptr<float>();
    for (int64_t i = 0; i < len; ++i) {
      const uint64_t r = gen() % 10;
      x[i] = r == 0 ? 1.5f : r == 1 ? std::nanf("") : r == 2 ? -0.0f : dist(gen);
      x[len + i] = band(gen);
      x[2 * len + i] = static_cast<float>(gen() % 3);
      x[3 * len + i] = 0.25f;
      x[4 * len + i] = gen() % 2 ? std::nanf("") : dist(gen);  // about len / 2 candidates
    }
    expect_topk_like_cpu(scores, {1, 62, 2048, 4096});
  }
}

// Rows the short-row kernel takes (at most 8192).
TEST_F(HisaCuda, TopkShortRowsEqualCpu) { expect_short_rows_like_cpu({5000, 5001, 8192}); }

// Rows the tiny-row kernel takes in the automatic strategy (at most 1024: 16 or 32 per lane) and the short-row kernel
// in the short-row one.
TEST_F(HisaCuda, TopkTinyRowsEqualCpu) { expect_short_rows_like_cpu({301, 700, 1024}); }

// Sets one on/off switch of FlatTuning or TopkTuning for a scope, e.g. TuningSwitch kernel(flat_tuning().wgmma, false).
struct TuningSwitch {
  bool& flag;
  bool saved;
  TuningSwitch(bool& f, bool on) : flag(f), saved(f) { flag = on; }
  ~TuningSwitch() { flag = saved; }
};

// Shrinks the flat indexer's buffers so small inputs take the chunked, multi-block path.
struct SmallBuffers {
  hisa::cuda_detail::FlatTuning saved = hisa::cuda_detail::flat_tuning();
  SmallBuffers() {
    auto& t = hisa::cuda_detail::flat_tuning();
    t.single_pass_bytes = 1 << 16;
    t.chunk_budget_bytes = 1 << 18;
    t.chunk_keys = 2048;
  }
  ~SmallBuffers() { hisa::cuda_detail::flat_tuning() = saved; }
};

// The merged chunks keep each row's winners in a prefix of the score rows, padded to 4 floats: k and chunk lengths
// that are multiples of 4 and ones that are not; merges in one read and in two passes, at 2 and 1 CTAs per SM. With
// k = 2048 and chunks of 4096 the second chunk of a long row is expected to bring about as many candidates as one
// read holds (4096 with the winners), so that some rows take the one-read path and others fall back to two passes
// (expected from the distribution, not counted).
TEST_F(HisaCuda, ChunkedFlatPathMatchesCpu) {
  SmallBuffers small;
  std::mt19937_64 gen(test::fresh_seed());
  const test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 4, 3000, 9000, 20);
  auto& topk_tune = hisa::cuda_detail::topk_tuning();
  const auto saved = topk_tune;
  for (const auto& [topk, chunk] : {std::pair{300, 2048}, std::pair{301, 2046}, std::pair{2048, 4096}}) {
    hisa::HisaOptions opt;
    opt.topk = topk;
    opt.block = 64;
    opt.blocks_kept = std::max(16, (topk + 63) / 64);  // HISA needs blocks_kept * block >= topk
    const Outputs cpu = run_cpu(p, opt);
    for (const auto& [one_read, two_ctas] : {std::pair{true, true}, std::pair{false, true}, std::pair{true, false}}) {
      hisa::cuda_detail::flat_tuning().chunk_keys = chunk;
      topk_tune.one_read = one_read;
      topk_tune.two_ctas = two_ctas;
      const Outputs gpu = run_gpu(p, opt);
      int64_t ties = 0;
      EXPECT_EQ(compare_prefill(p, gpu.flat, cpu.flat, ties), 0)
          << "topk " << topk << " chunk " << chunk << " one read " << one_read << " two CTAs " << two_ctas;
      std::cout << "[ info     ] topk " << topk << " chunk " << chunk << " one read " << one_read << " two CTAs "
                << two_ctas << " tie swaps: " << ties << std::endl;
    }
  }
  topk_tune = saved;
}

// One pass over every key (no merge): the top-k reads only each row's visible keys of the score buffer (nothing
// fills the rest), with one CTA per row, segments (each binding its row's constants) and clusters.
TEST_F(HisaCuda, SinglePassFlatReadsVisibleKeysOnly) {
  std::mt19937_64 gen(test::fresh_seed());
  const test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 2, 2000, 7000, 12);
  hisa::HisaOptions opt;
  opt.topk = 512;
  const Outputs cpu = run_cpu(p, opt);
  for (const auto& [segment, cluster] : {std::pair<int64_t, int>{0, 1}, {1000, 1}, {0, 3}, {-1, -1}}) {
    const auto saved = hisa::cuda_detail::topk_tuning();
    hisa::cuda_detail::topk_tuning().segment = segment;
    hisa::cuda_detail::topk_tuning().cluster = cluster;
    const Outputs gpu = run_gpu(p, opt);
    hisa::cuda_detail::topk_tuning() = saved;
    int64_t ties = 0;
    EXPECT_EQ(compare_prefill(p, gpu.flat, cpu.flat, ties), 0) << "segment " << segment << " cluster " << cluster;
  }
}

TEST_F(HisaCuda, PooledKeysEqualCpuBitForBit) {
  std::mt19937_64 gen(test::fresh_seed());
  const test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, 1, 128, 1, 1000, 1000, 1);
  for (int block : {64, 128, 100}) {
    const auto cpu = hisa::pool_keys(p.k, p.k_scale, block, hisa::PooledFormat::FP8);
    DeviceTensor k(p.k), s(p.k_scale), codes(DType::F8_E4M3, cpu.codes.shape()), scale(DType::F32, cpu.scale.shape());
    hisa::cuda::pool_keys(k, s, block, codes, scale);
    EXPECT_TRUE(test::same_rows(codes.to_host(), cpu.codes)) << block;
    EXPECT_TRUE(test::same_rows(scale.to_host(), cpu.scale)) << block;
  }
}

// Both scoring kernels (wgmma in both shapes: FlatTuning::wide_mainloop), 64 and 32 heads, ragged sequences, a last
// group of one row, some negative key scales.
TEST_F(HisaCuda, RaggedPrefillMatchesCpuUpToTies) {
  std::mt19937_64 gen(test::fresh_seed());
  for (int H : {64, 32}) {
    test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, H, 128, 3, 1500, 6000, 11);
    for (int64_t n = 0; n < p.k_scale.shape()[0]; ++n)
      if (gen() % 5 == 0) p.k_scale.ptr<float>()[n] = -p.k_scale.ptr<float>()[n];
    hisa::HisaOptions opt;
    opt.topk = 256;
    opt.block = H == 32 ? 128 : 64;  // the token stage on wgmma (block 128) and on mma.sync
    opt.blocks_kept = 8;
    const Outputs cpu = run_cpu(p, opt);
    for (const auto& [wgmma, wide] : {std::pair{true, false}, std::pair{true, true}, std::pair{false, false}}) {
      const TuningSwitch kernel(hisa::cuda_detail::flat_tuning().wgmma, wgmma);
      const TuningSwitch shape(hisa::cuda_detail::flat_tuning().wide_mainloop, wide);
      const Outputs gpu = run_gpu(p, opt);
      int64_t ties = 0;
      EXPECT_EQ(compare_prefill(p, gpu.flat, cpu.flat, ties), 0) << "H " << H << " wgmma " << wgmma << " wide " << wide;
      EXPECT_EQ(compare_prefill(p, gpu.hisa_idx, cpu.hisa_idx, ties), 0)
          << "H " << H << " wgmma " << wgmma << " wide " << wide;
      std::cout << "[ info     ] H " << H << " wgmma " << wgmma << " wide " << wide << " tie swaps: " << ties
                << std::endl;
    }
  }
}

TEST_F(HisaCuda, GeneratedPrefillMatchesCpuUpToTies) {
  hisa::SynthConfig cfg;
  cfg.context = 16384;
  cfg.queries = 48;
  cfg.seed = test::fresh_seed();
  const test::Prefill p = from_problem(hisa::make_prefill_problem(cfg));
  // Unsorted and sorted output; the wide wgmma mainloop (H = 64, HISA's token stage with blocks of 128) unsorted.
  for (const auto& [sorted, wide] : {std::pair{false, false}, std::pair{true, false}, std::pair{false, true}}) {
    hisa::HisaOptions opt;
    opt.sorted = sorted;
    const TuningSwitch shape(hisa::cuda_detail::flat_tuning().wide_mainloop, wide);
    const Outputs gpu = run_gpu(p, opt), cpu = run_cpu(p, opt);
    int64_t ties = 0;
    EXPECT_EQ(compare_prefill(p, gpu.flat, cpu.flat, ties), 0);
    EXPECT_EQ(compare_prefill(p, gpu.hisa_idx, cpu.hisa_idx, ties), 0);
    std::cout << "[ info     ] tie swaps: " << ties << std::endl;
  }
}

TEST_F(HisaCuda, IdentitiesHoldExactly) {
  std::mt19937_64 gen(test::fresh_seed());
  // Few eligible blocks: HISA keeps them all. When flat scores with the token stage's kernel (mma.sync): identical
  // output. With the wgmma flat kernel the two sum in different orders: equal up to rounding ties.
  const test::Prefill few = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 3, 300, 1000, 9);
  hisa::HisaOptions opt;
  opt.topk = 128;
  opt.block = 64;
  opt.blocks_kept = 17;
  Outputs o;
  {
    const TuningSwitch kernel(hisa::cuda_detail::flat_tuning().wgmma, false);
    o = run_gpu(few, opt);
    EXPECT_TRUE(test::same_rows(o.flat, o.hisa_idx));
  }
  o = run_gpu(few, opt);
  int64_t ties = 0;
  EXPECT_EQ(compare_prefill(few, o.hisa_idx, o.flat, ties), 0);
  // Blocks of 128: the token stage runs on the flat kernel's wgmma mainloop too, and the identity is exact again.
  opt.block = 128;
  opt.blocks_kept = 9;
  o = run_gpu(few, opt);
  EXPECT_TRUE(test::same_rows(o.flat, o.hisa_idx));
  opt.block = 64;
  // ke - ks <= topk: every visible token.
  const test::Prefill shorts = test::random_prefill(gen, DType::F8_E4M3, 32, 128, 4, 10, 200, 6);
  opt.topk = 256;
  opt.blocks_kept = 4;
  o = run_gpu(shorts, opt);
  for (int64_t r = 0; r < shorts.q.shape()[0]; ++r) {
    std::set<int32_t> all;
    for (int32_t i = 0; i < shorts.ke.ptr<int32_t>()[r] - shorts.ks.ptr<int32_t>()[r]; ++i) all.insert(i);
    EXPECT_EQ(test::row_set(o.flat, r), all);
    EXPECT_EQ(test::row_set(o.hisa_idx, r), all);
  }
  // Deterministic: the same call twice gives the same bytes.
  const test::Prefill again = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 2, 3000, 5000, 7);
  opt.topk = 512;
  opt.blocks_kept = 16;
  const Outputs a = run_gpu(again, opt), b = run_gpu(again, opt);
  EXPECT_TRUE(test::same_rows(a.flat, b.flat));
  EXPECT_TRUE(test::same_rows(a.hisa_idx, b.hisa_idx));
}

struct DecodeRun {
  Tensor positions, slots;
};

struct DecodeCase {
  int H, next_n;
  bool per_token;
  int block, blocks_kept, topk;
  bool negative_scales, wgmma;
};

// Flat and HISA decode on the GPU against the CPU for one configuration (outputs poisoned), slots consistent with
// positions, and the device pooled cache equal to the CPU's bit for bit.
void expect_decode_like_cpu(std::mt19937_64& gen, const DecodeCase& c) {
  SCOPED_TRACE(::testing::Message() << "H " << c.H << " next_n " << c.next_n << " per_token " << c.per_token
                                    << " block " << c.block << " negative scales " << c.negative_scales << " wgmma "
                                    << c.wgmma);
  const int batch = 5, D = 128;
  test::Decode d = test::random_decode(gen, DType::F8_E4M3, c.H, D, batch, c.next_n, 300, 3000, c.per_token);
  const int64_t num_pages = d.kv_cache.shape()[0];
  if (c.negative_scales) {  // every third key of every page
    for (int64_t p = 0; p < num_pages; ++p)
      for (int r = 0; r < 64; r += 3) {
        float* s = reinterpret_cast<float*>(static_cast<uint8_t*>(d.kv_cache.view().data()) + p * 64 * (D + 4) +
                                            64 * D + r * 4);
        *s = -*s;
      }
  }
  hisa::HisaOptions opt;
  opt.topk = c.topk;
  opt.block = c.block;
  opt.blocks_kept = c.blocks_kept;
  const int64_t rows = int64_t{batch} * c.next_n, max_pages = d.block_table.shape()[1];
  DeviceTensor q(d.q), w(d.w), cache(d.kv_cache), table(d.block_table), lens(d.context_lens);
  const hisa::DecodeInputs in{q, w, cache, table, lens};
  DeviceTensor fpos(DType::I32, {rows, opt.topk}), fslot(DType::I32, {rows, opt.topk});
  DeviceTensor hpos(DType::I32, {rows, opt.topk}), hslot(DType::I32, {rows, opt.topk});
  for (DeviceTensor* t : {&fpos, &fslot, &hpos, &hslot}) t->poison();
  hisa::cuda::PooledKeyCache pooled(0, batch, static_cast<int>((max_pages * 64 + c.block - 1) / c.block), opt.block);
  const bool saved = hisa::cuda_detail::flat_tuning().wgmma;
  hisa::cuda_detail::flat_tuning().wgmma = c.wgmma;
  hisa::cuda::flat_decode(in, opt, {fpos, fslot});
  hisa::cuda::hisa_decode(in, pooled, opt, {hpos, hslot});
  hisa::cuda_detail::flat_tuning().wgmma = saved;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Tensor cf(DType::I32, {rows, opt.topk}), ch(DType::I32, {rows, opt.topk});
  hisa::flat_decode(d.inputs(), opt, {cf, {}});
  hisa::PooledKeyCache cpu_cache(128, opt.block);
  hisa::hisa_decode(d.inputs(), cpu_cache, opt, {ch, {}});
  const Tensor gf = fpos.to_host(), gh = hpos.to_host(), gfs = fslot.to_host(), ghs = hslot.to_host();
  int64_t ties = 0, bad = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t r = row / c.next_n;
    // The request's keys as a dense tensor, to score differences exactly.
    const auto* base = static_cast<const uint8_t*>(d.kv_cache.view().data());
    std::vector<uint8_t> keys(3000 * D);
    std::vector<float> scales(3000);
    for (int64_t pos = 0; pos < 3000 && pos / 64 < max_pages; ++pos) {
      const int32_t page = d.block_table.ptr<int32_t>()[r * max_pages + pos / 64];
      if (page < 0) break;
      std::memcpy(&keys[pos * D], base + page * 64 * (D + 4) + (pos % 64) * D, D);
      std::memcpy(&scales[pos], base + page * 64 * (D + 4) + 64 * D + (pos % 64) * 4, 4);
    }
    RowScorer score(d.q, row, d.w.ptr<float>() + row * c.H, keys.data(), scales.data());
    for (const auto& [g, cpu] : {std::pair{&gf, &cf}, std::pair{&gh, &ch}}) {
      const auto gs = test::row_set(*g, row), cs = test::row_set(*cpu, row);
      EXPECT_EQ(gs.size(), cs.size()) << "row " << row;
      if (gs == cs) continue;
      double kth = INFINITY, max_abs = 0;
      for (int32_t x : cs) kth = std::min(kth, score(x)), max_abs = std::max(max_abs, std::fabs(score(x)));
      bad += test::unexplained_differences(gs, cs, score, kth, max_abs, kRelTol, ties);
    }
    for (const auto& [pos, slot] : {std::pair{&gf, &gfs}, std::pair{&gh, &ghs}})
      for (int i = 0; i < opt.topk; ++i) {
        const int32_t p = pos->ptr<int32_t>()[row * opt.topk + i];
        const int32_t want = p < 0 ? -1 : d.block_table.ptr<int32_t>()[r * max_pages + p / 64] * 64 + p % 64;
        EXPECT_EQ(slot->ptr<int32_t>()[row * opt.topk + i], want);
      }
  }
  EXPECT_EQ(bad, 0);
  std::cout << "[ info     ] tie swaps: " << ties << std::endl;
  const Tensor codes = DeviceTensor::host_copy(pooled.codes()), scales = DeviceTensor::host_copy(pooled.scales());
  for (int r = 0; r < batch; ++r) {
    const TensorView cc = cpu_cache.codes(r), cs = cpu_cache.scales(r);
    EXPECT_EQ(std::memcmp(static_cast<const uint8_t*>(codes.view().data()) + int64_t{r} * pooled.max_blocks() * 128,
                          cc.data(), cc.nbytes()),
              0)
        << "request " << r;
    EXPECT_EQ(std::memcmp(scales.ptr<float>() + int64_t{r} * pooled.max_blocks(), cs.data(), cs.nbytes()), 0);
  }
}

TEST_F(HisaCuda, DecodeMatchesCpuAndPooledCacheIsExact) {
  std::mt19937_64 gen(test::fresh_seed());
  // next_n 1..4 (the wgmma decode kernel stages 1, 2 or 4 rows), 32 and 64 heads, blocks of 64 and 128, negative
  // key scales, and the mma.sync kernels.
  for (const DecodeCase& c : {DecodeCase{64, 2, false, 64, 8, 256, false, true},
                              DecodeCase{64, 3, true, 64, 8, 256, false, true},
                              DecodeCase{64, 1, false, 128, 8, 512, true, true},
                              DecodeCase{32, 4, true, 128, 6, 256, true, true},
                              DecodeCase{64, 1, false, 128, 8, 512, true, false},
                              DecodeCase{64, 2, false, 64, 8, 256, false, false}})
    expect_decode_like_cpu(gen, c);
}

// Without check_finite nothing is validated up front: a request with a bad page index or length gets no candidates
// (-1) instead of an error, the other requests are unaffected, and nothing reads outside the cache.
TEST_F(HisaCuda, UncheckedDecodeIsolatesBadRequests) {
  std::mt19937_64 gen(test::fresh_seed());
  test::Decode d = test::random_decode(gen, DType::F8_E4M3, 64, 128, 4, 1, 300, 1000, false);
  hisa::HisaOptions opt;
  opt.topk = 128;
  opt.block = 128;
  opt.blocks_kept = 4;
  const int64_t max_pages = d.block_table.shape()[1];
  DeviceTensor q(d.q), w(d.w), cache(d.kv_cache), lens_ok(d.context_lens), table_ok(d.block_table);
  DeviceTensor good(DType::I32, {4, opt.topk}), hgood(DType::I32, {4, opt.topk});
  hisa::cuda::PooledKeyCache pooled_ok(0, 4, static_cast<int>(max_pages), opt.block);
  hisa::cuda::flat_decode({q, w, cache, table_ok, lens_ok}, opt, {good, {}});
  hisa::cuda::hisa_decode({q, w, cache, table_ok, lens_ok}, pooled_ok, opt, {hgood, {}});
  d.block_table.ptr<int32_t>()[1 * max_pages] = 1 << 30;   // request 1: a page far outside the cache
  d.context_lens.ptr<int32_t>()[2] = static_cast<int32_t>(max_pages * 64 + 1);  // request 2: longer than its table
  DeviceTensor table(d.block_table), lens(d.context_lens);
  opt.check_finite = false;
  DeviceTensor flat(DType::I32, {4, opt.topk}), hisa_idx(DType::I32, {4, opt.topk});
  flat.poison();
  hisa_idx.poison();
  hisa::cuda::PooledKeyCache pooled(0, 4, static_cast<int>(max_pages), opt.block);
  hisa::cuda::flat_decode({q, w, cache, table, lens}, opt, {flat, {}});
  hisa::cuda::hisa_decode({q, w, cache, table, lens}, pooled, opt, {hisa_idx, {}});
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor f = flat.to_host(), h = hisa_idx.to_host(), fg = good.to_host(), hg = hgood.to_host();
  for (int64_t r = 0; r < 4; ++r) {
    if (r == 1 || r == 2) {
      EXPECT_TRUE(test::row_set(f, r).empty()) << "request " << r;
      EXPECT_TRUE(test::row_set(h, r).empty()) << "request " << r;
    } else {
      EXPECT_EQ(test::row_set(f, r), test::row_set(fg, r)) << "request " << r;
      EXPECT_EQ(test::row_set(h, r), test::row_set(hg, r)) << "request " << r;
    }
  }
  opt.check_finite = true;  // the checked call reports the first bad value
  EXPECT_HILO_ERROR(hisa::cuda::flat_decode({q, w, cache, table, lens}, opt, {flat, {}}), "context_lens[2] =");
}

// A checked decode call that validation rejects changes nothing in the pooled cache: its lengths, codes and scales
// keep the bytes of the last accepted call (the lengths move only after validation and pooling), and the next valid
// call leaves the cache as a fresh one fed only the valid calls.
TEST_F(HisaCuda, RejectedCheckedDecodeLeavesThePooledCacheUnchanged) {
  std::mt19937_64 gen(test::fresh_seed());
  const int batch = 4;
  test::Decode d = test::random_decode(gen, DType::F8_E4M3, 64, 128, batch, 1, 300, 1000, false);
  hisa::HisaOptions opt;
  opt.topk = 128;
  opt.block = 64;
  opt.blocks_kept = 4;
  const int64_t max_pages = d.block_table.shape()[1];
  DeviceTensor q(d.q), w(d.w), cache(d.kv_cache), idx(DType::I32, {batch, opt.topk});
  const auto decode = [&](hisa::cuda::PooledKeyCache& pooled, const Tensor& table_h, const Tensor& lens_h) {
    DeviceTensor table(table_h), lens(lens_h);
    hisa::cuda::hisa_decode({q, w, cache, table, lens}, pooled, opt, {idx, {}});
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  };
  const auto snapshot = [](const hisa::cuda::PooledKeyCache& pooled) {
    std::vector<Tensor> t;
    for (const TensorView& v : {pooled.lengths(), pooled.codes(), pooled.scales()}) t.push_back(DeviceTensor::host_copy(v));
    return t;
  };
  const auto expect_same = [](const std::vector<Tensor>& a, const std::vector<Tensor>& b, const char* what) {
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_EQ(std::memcmp(a[i].view().data(), b[i].view().data(), a[i].nbytes()), 0)
          << what << ": pooled cache view " << i << " (lengths, codes, scales) differs";
  };
  hisa::cuda::PooledKeyCache pooled(0, batch, static_cast<int>(max_pages), opt.block);
  const Tensor first_lens = Tensor::copy_of(d.context_lens);
  decode(pooled, d.block_table, first_lens);
  const std::vector<Tensor> accepted = snapshot(pooled);
  // The next step: every request grows by up to 40 tokens inside its pages, so an accepted call would pool new rows.
  for (int r = 0; r < batch; ++r) {
    int32_t& len = d.context_lens.ptr<int32_t>()[r];
    len = std::min<int32_t>(len + 40, (len + 63) / 64 * 64);
  }
  Tensor bad_lens = Tensor::copy_of(d.context_lens);
  bad_lens.ptr<int32_t>()[2] = static_cast<int32_t>(max_pages * 64 + 1);
  EXPECT_HILO_ERROR(decode(pooled, d.block_table, bad_lens), "context_lens[2] =");
  expect_same(snapshot(pooled), accepted, "after a length past the block table");
  Tensor bad_table = Tensor::copy_of(d.block_table);
  bad_table.ptr<int32_t>()[1 * max_pages] = 1 << 30;
  EXPECT_HILO_ERROR(decode(pooled, bad_table, d.context_lens), "block_table[1, 0]");
  expect_same(snapshot(pooled), accepted, "after a page outside the cache");
  decode(pooled, d.block_table, d.context_lens);
  hisa::cuda::PooledKeyCache fresh(0, batch, static_cast<int>(max_pages), opt.block);
  decode(fresh, d.block_table, first_lens);
  decode(fresh, d.block_table, d.context_lens);
  expect_same(snapshot(pooled), snapshot(fresh), "the valid step after the rejected ones");
}

// Without check_finite a decode step never synchronises, so serving engines can capture it: flat and HISA decode
// captured in a CUDA graph on a non-blocking stream give, on every replay, the bytes of the direct calls.
TEST_F(HisaCuda, UncheckedDecodeCapturesInACudaGraph) {
  std::mt19937_64 gen(test::fresh_seed());
  const int batch = 6;
  const test::Decode d = test::random_decode(gen, DType::F8_E4M3, 64, 128, batch, 1, 500, 5000, false);
  hisa::HisaOptions opt;
  opt.topk = 512;
  opt.block = 128;
  opt.blocks_kept = 8;
  opt.check_finite = false;
  const int64_t max_pages = d.block_table.shape()[1];
  DeviceTensor q(d.q), w(d.w), cache(d.kv_cache), table(d.block_table), lens(d.context_lens);
  const hisa::DecodeInputs in{q, w, cache, table, lens};
  DeviceTensor flat(DType::I32, {batch, opt.topk}), hisa_idx(DType::I32, {batch, opt.topk});
  DeviceTensor flat_g(DType::I32, {batch, opt.topk}), hisa_g(DType::I32, {batch, opt.topk});
  hisa::cuda::PooledKeyCache pooled(0, batch, static_cast<int>(max_pages), opt.block);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  hisa::cuda::flat_decode(in, opt, {flat, {}}, stream);
  hisa::cuda::hisa_decode(in, pooled, opt, {hisa_idx, {}}, stream);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  hisa::cuda::flat_decode(in, opt, {flat_g, {}}, stream);
  hisa::cuda::hisa_decode(in, pooled, opt, {hisa_g, {}}, stream);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  const Tensor want_flat = flat.to_host(), want_hisa = hisa_idx.to_host();
  for (int replay = 0; replay < 2; ++replay) {
    flat_g.poison();
    hisa_g.poison();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the poison (default stream) lands before the replay
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    const Tensor got_flat = flat_g.to_host(), got_hisa = hisa_g.to_host();
    EXPECT_EQ(std::memcmp(got_flat.view().data(), want_flat.view().data(), want_flat.nbytes()), 0) << replay;
    EXPECT_EQ(std::memcmp(got_hisa.view().data(), want_hisa.view().data(), want_hisa.nbytes()), 0) << replay;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// The pair-sort tile union (FlatTuning::pair_union) builds the same unions and slots as the first kernel, so HISA's
// output is the same bytes: prefill with tiles of 16 rows (ragged sequences, several tiles per sequence boundary;
// blocks of 64 on the mma.sync token kernel, 128 on the wgmma one) and decode with next_n 3 (tiles of 3 rows) and
// next_n 1 (the shared single-row copy).
TEST_F(HisaCuda, PairSortUnionGivesTheSameBits) {
  std::mt19937_64 gen(test::fresh_seed());
  hisa::HisaOptions opt;
  opt.topk = 300;
  opt.block = 64;
  opt.blocks_kept = 16;
  const test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 3, 3000, 9000, 40);
  const auto prefill = [&](bool pairs) {
    const TuningSwitch kernel(hisa::cuda_detail::flat_tuning().pair_union, pairs);
    return run_gpu(p, opt).hisa_idx;
  };
  const Tensor want = prefill(false), got = prefill(true);
  ASSERT_EQ(got.nbytes(), want.nbytes());
  EXPECT_EQ(std::memcmp(got.view().data(), want.view().data(), want.nbytes()), 0) << "prefill, block 64";
  opt.block = 128;  // the wgmma token kernel, which reads the unions' slots instead of searching the kept lists
  opt.blocks_kept = 8;
  const Tensor want128 = prefill(false), got128 = prefill(true);
  EXPECT_EQ(std::memcmp(got128.view().data(), want128.view().data(), want128.nbytes()), 0) << "prefill, block 128";
  for (int next_n : {3, 1}) {
    const int batch = 4;
    const test::Decode d = test::random_decode(gen, DType::F8_E4M3, 64, 128, batch, next_n, 500, 6000, false);
    DeviceTensor q(d.q), w(d.w), cache(d.kv_cache), table(d.block_table), lens(d.context_lens);
    const int max_blocks = static_cast<int>((d.block_table.shape()[1] * hisa::kPageSize + opt.block - 1) / opt.block);
    const auto decode = [&](bool pairs) {
      const TuningSwitch kernel(hisa::cuda_detail::flat_tuning().pair_union, pairs);
      DeviceTensor idx(DType::I32, {batch * next_n, opt.topk});
      hisa::cuda::PooledKeyCache pooled(0, batch, max_blocks, opt.block);
      idx.poison();
      hisa::cuda::hisa_decode({q, w, cache, table, lens}, pooled, opt, {idx, {}});
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      return idx.to_host();
    };
    const Tensor want_d = decode(false), got_d = decode(true);
    EXPECT_EQ(std::memcmp(got_d.view().data(), want_d.view().data(), want_d.nbytes()), 0) << "decode, next_n " << next_n;
  }
}

// HISA's block top-k on the tiny-row kernel (a warp per row; TopkTuning::tiny_rows) keeps the same blocks as on the
// CTA-per-row kernel, so the output is the same bytes: rows of up to 313 blocks (16 per lane) and 782 (32 per lane).
TEST_F(HisaCuda, TinyRowBlockTopkGivesTheSameBits) {
  std::mt19937_64 gen(test::fresh_seed());
  hisa::HisaOptions opt;
  opt.topk = 300;
  opt.block = 64;
  opt.blocks_kept = 16;
  for (int len : {20000, 50000}) {
    const test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 1, len, len, 30);
    const auto prefill = [&](bool tiny) {
      const TuningSwitch kernel(hisa::cuda_detail::topk_tuning().tiny_rows, tiny);
      return run_gpu(p, opt).hisa_idx;
    };
    const Tensor want = prefill(false), got = prefill(true);
    EXPECT_EQ(std::memcmp(got.view().data(), want.view().data(), want.nbytes()), 0) << "context " << len;
  }
}

TEST_F(HisaCuda, BadInputGetsTheCpuMessages) {
  std::mt19937_64 gen(test::fresh_seed());
  test::Prefill p = test::random_prefill(gen, DType::F8_E4M3, 64, 128, 2, 300, 600, 3);
  hisa::HisaOptions opt;
  opt.topk = 64;
  opt.block = 64;
  opt.blocks_kept = 4;
  DeviceTensor idx(DType::I32, {6, 64});
  auto run = [&](const test::Prefill& x) {
    DeviceTensor q(x.q), w(x.w), k(x.k), ks(x.k_scale), lo(x.ks), hi(x.ke);
    hisa::cuda::hisa_prefill({q, w, k, ks, lo, hi}, opt, idx);
  };
  p.ks.ptr<int32_t>()[2] = p.ke.ptr<int32_t>()[2] + 1;
  EXPECT_HILO_ERROR(run(p), "cuda::hisa_prefill: ks[2] =");
  p.ks.ptr<int32_t>()[2] = 0;
  static_cast<uint8_t*>(p.q.view().data())[300] = 0x7F;
  EXPECT_HILO_ERROR(run(p), "cuda::hisa_prefill: q holds a non-finite value (nan) at [0, 2, 44]");
  static_cast<uint8_t*>(p.q.view().data())[300] = 0x30;
  p.k_scale.ptr<float>()[7] = INFINITY;
  EXPECT_HILO_ERROR(run(p), "k_scale holds a non-finite value (inf) at [7]");
  p.k_scale.ptr<float>()[7] = 1.0f;
  Tensor q16(DType::BF16, p.q.shape());
  test::Prefill wrong{std::move(q16), std::move(p.w), std::move(p.k), std::move(p.k_scale), std::move(p.ks),
                      std::move(p.ke)};
  EXPECT_HILO_ERROR(run(wrong), "takes F8_E4M3 q and keys");

  test::Decode d = test::random_decode(gen, DType::F8_E4M3, 64, 128, 2, 1, 100, 200, false);
  d.block_table.ptr<int32_t>()[1] = 999;
  DeviceTensor q(d.q), w(d.w), cache(d.kv_cache), table(d.block_table), lens(d.context_lens);
  DeviceTensor pos(DType::I32, {2, 64});
  EXPECT_HILO_ERROR(hisa::cuda::flat_decode({q, w, cache, table, lens}, opt, {pos, {}}),
                    "block_table[0, 1] = 999 points outside the cache's");
}

}  // namespace
}  // namespace hilo
