// The LoRDS CUDA API: uploads a quantized layer, checks every argument (messages name it) and launches.
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "../../core/check.hpp"
#include "../../cuda/host.hpp"
#include "../kernels.hpp"
#include "../gpu_layout.hpp"
#include "gemv.hpp"
#include "mma_gemm.hpp"
#include "mma_gemv.hpp"
#include "hilo/lords_cuda.hpp"

namespace hilo::lords::cuda {
namespace {

using hilo::cuda_detail::check_cuda;
using hilo::cuda_detail::DeviceScope;
using Buffer = hilo::cuda_detail::DeviceBuffer;

}  // namespace

struct DeviceLinear::Impl {
  int device = 0;
  int64_t rows = 0, cols = 0;
  // The tensor-core path (tiled layout) serves block-wise layers and LoRDS up to rank 128; the CUDA-core kernel
  // (plain layout) the larger ranks. Pointers into the buffers below; x, y, batch are filled per call.
  bool mma = false;
  cuda_detail::MmaArgs mma_args;
  cuda_detail::GemmExtras gemm_extras;
  cuda_detail::GemvArgs plain_args;
  Buffer codes, pairs, scales, b, a, a_t;
};

namespace {

template <typename T>
Buffer upload(const std::vector<T>& v) {
  return Buffer(v.size() * sizeof(T), v.data());
}

void upload_tiled(const QuantizedLinear& q, DeviceLinear::Impl& m) {
  namespace gl = gpu_layout;
  m.codes = upload(gl::tile_codes(q));
  const std::vector<uint32_t> pairs = gl::pair_table(q.codebook);
  m.pairs = upload(pairs);
  auto& g = m.mma_args;
  for (int i = 0; i < (1 << q.codebook.bits); ++i) g.values_h[i] = static_cast<uint16_t>(pairs[static_cast<std::size_t>(i)]);
  g.codes = static_cast<const uint8_t*>(m.codes.get());
  g.pairs = static_cast<const uint32_t*>(m.pairs.get());
  g.rows = q.rows;
  g.cols = q.cols;
  g.row_tiles = static_cast<int>(gl::tiles_down(q.rows));
  g.col_tiles = static_cast<int>(gl::tiles_across(q.cols));
  g.bits = q.codebook.bits;
  g.block = q.block;
  g.block_shift = (q.block & (q.block - 1)) == 0 ? std::countr_zero(static_cast<unsigned>(q.block)) : -1;
  g.lords = q.method == Method::Lords;
  if (g.lords) {
    m.b = upload(gl::pad_factor_b(q));
    m.a = upload(gl::tile_factor_a(q));
    g.b = static_cast<const uint16_t*>(m.b.get());
    g.a = static_cast<const uint32_t*>(m.a.get());
    m.a_t = upload(gl::transpose_factor_a(q));
    m.gemm_extras.a_t = static_cast<const uint16_t*>(m.a_t.get());
    g.a_absmax = gl::factor_a_absmax(q);
    g.rank = q.rank;
    g.rank_pad = gl::padded_rank(q.rank);
  } else {
    m.scales = upload(gl::tile_scales(q));
    g.scales = static_cast<const uint16_t*>(m.scales.get());
    g.scale_blocks = static_cast<int>(gl::tiled_scale_blocks(q.cols, q.block));
  }
  g.device = m.device;
  check_cuda(cudaDeviceGetAttribute(&g.sm_count, cudaDevAttrMultiProcessorCount, m.device), "cudaDeviceGetAttribute");
}

void upload_plain(const QuantizedLinear& q, DeviceLinear::Impl& m) {
  m.codes = upload(q.qweight);
  m.scales = upload(q.scales);
  m.b = upload(q.b);
  m.a = upload(q.a);
  auto& g = m.plain_args;
  g.qweight = static_cast<const uint8_t*>(m.codes.get());
  g.scales = static_cast<const uint16_t*>(m.scales.get());
  g.b = static_cast<const uint16_t*>(m.b.get());
  g.a = static_cast<const uint16_t*>(m.a.get());
  detail::fill_lut16(q.codebook.values, g.lut);
  g.rows = q.rows;
  g.cols = q.cols;
  g.row_bytes = q.row_bytes();
  g.bits = q.codebook.bits;
  g.block = q.block;
  g.rank = q.rank;
  g.lords = q.method == Method::Lords;
}

}  // namespace

DeviceLinear::DeviceLinear(const QuantizedLinear& q, int device) : impl_(std::make_unique<Impl>()) {
  HILO_CHECK(q.codebook.bits >= 2 && q.codebook.bits <= 4 && q.codebook.values.size() == (1u << q.codebook.bits),
             "lords::cuda::DeviceLinear: codebook '{}' is malformed", q.codebook.name());
  HILO_CHECK(q.rows > 0 && q.cols > 0 && q.cols % 32 == 0 && q.block > 0 && q.block % 32 == 0 && q.cols % q.block == 0,
             "lords::cuda::DeviceLinear: layer [{}, {}] with block {} is malformed (cols a multiple of 32 and of "
             "block, block a multiple of 32)",
             q.rows, q.cols, q.block);
  HILO_CHECK(static_cast<int64_t>(q.qweight.size()) == q.rows * q.row_bytes(),
             "lords::cuda::DeviceLinear: qweight holds {} bytes, expected {}", q.qweight.size(), q.rows * q.row_bytes());
  if (q.method == Method::Lords) {
    HILO_CHECK(q.rank >= 1 && q.rank <= cuda_detail::kMaxRank, "lords::cuda::DeviceLinear: rank = {} must be in [1, {}]",
               q.rank, cuda_detail::kMaxRank);
    HILO_CHECK(static_cast<int64_t>(q.b.size()) == q.rows * q.rank && static_cast<int64_t>(q.a.size()) == q.rank * q.cols,
               "lords::cuda::DeviceLinear: factors hold {} and {} values, expected {} and {}", q.b.size(), q.a.size(),
               q.rows * q.rank, q.rank * q.cols);
  } else {
    HILO_CHECK(static_cast<int64_t>(q.scales.size()) == q.rows * (q.cols / q.block),
               "lords::cuda::DeviceLinear: scales hold {} values, expected {}", q.scales.size(),
               q.rows * (q.cols / q.block));
  }
  Impl& m = *impl_;
  m.device = device;
  m.rows = q.rows;
  m.cols = q.cols;
  // Grid rows of 8 row tiles (<= 65535) and the kernels' 32-bit column indices bound the layer.
  HILO_CHECK(gpu_layout::tiles_down(q.rows) <= int64_t{65535} * 8 && gpu_layout::tiles_across(q.cols) < (1 << 18),
             "lords::cuda::DeviceLinear: layer [{}, {}] is too large (rows <= 8388480, cols < 2^25)", q.rows, q.cols);
  DeviceScope scope(device);
  m.mma = q.method == Method::Blockwise || gpu_layout::padded_rank(q.rank) <= cuda_detail::kMmaMaxRank;
  if (m.mma)
    upload_tiled(q, m);
  else
    upload_plain(q, m);
}

DeviceLinear::~DeviceLinear() = default;
DeviceLinear::DeviceLinear(DeviceLinear&&) noexcept = default;
DeviceLinear& DeviceLinear::operator=(DeviceLinear&&) noexcept = default;
int64_t DeviceLinear::rows() const { return impl_->rows; }
int64_t DeviceLinear::cols() const { return impl_->cols; }
int DeviceLinear::device() const { return impl_->device; }

void matmul(const DeviceLinear& w, const TensorView& x, const TensorView& y, void* stream) {
  constexpr const char* where = "lords::cuda::matmul";
  const auto& l = w.impl();
  for (const auto& [t, name] : {std::pair{&x, "x"}, std::pair{&y, "y"}}) {
    expect_dtype(*t, where, name, {DType::BF16});
    expect_ndim(*t, where, name, 2);
    HILO_CHECK(t->device() == (Device{DeviceKind::CUDA, l.device}), "{}: {} is on {}, the layer on cuda:{}", where,
               name, to_string(t->device()), l.device);
    HILO_CHECK(t->is_contiguous(), "{}: {} must be contiguous", where, name);
    HILO_CHECK(reinterpret_cast<uintptr_t>(t->data()) % 16 == 0, "{}: {} must be 16-byte aligned", where, name);
  }
  const int64_t batch = x.size(0);
  HILO_CHECK(batch >= 1, "{}: x has batch {}, must be >= 1", where, batch);
  expect_shape(x, where, "x", {batch, l.cols});
  expect_shape(y, where, "y", {batch, l.rows});
  DeviceScope scope(l.device);
  int err = 0;
  if (l.mma) {
    cuda_detail::MmaArgs g = l.mma_args;
    g.x = static_cast<const uint16_t*>(x.data());
    g.y = static_cast<uint16_t*>(y.data());
    g.batch = batch;
    err = cuda_detail::use_mma_gemm(g) ? cuda_detail::launch_mma_gemm(g, l.gemm_extras, stream)
                                       : cuda_detail::launch_mma_gemv(g, stream);
  } else {
    cuda_detail::GemvArgs g = l.plain_args;
    g.x = static_cast<const uint16_t*>(x.data());
    g.y = static_cast<uint16_t*>(y.data());
    g.batch = batch;
    err = cuda_detail::launch_gemv(g, stream);
  }
  check_cuda(static_cast<cudaError_t>(err), "the kernel launch");
}

}  // namespace hilo::lords::cuda
