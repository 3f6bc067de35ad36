// Where the keys of an indexer call live (a dense [N, D] tensor, or one request's pages of a paged cache), and
// how they are packed into the kernel's panel layout (score_kernel.hpp), widened to f32 exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hilo/dtype.hpp"

namespace hilo::hisa::detail {

class KeySource {
 public:
  virtual ~KeySource() = default;
  virtual int64_t size() const = 0;
  virtual int dim() const = 0;
  // Packs keys [16*first_group, 16*(first_group + groups)); positions at or past size() get zeros (scale 0).
  virtual void pack(int64_t first_group, int groups, float* panel, float* scales) const = 0;
};

// Rows [n, D] of F8_E4M3, BF16 or F32 with a per-row f32 scale (nullptr: every scale is 1).
class DenseKeySource final : public KeySource {
 public:
  DenseKeySource(const void* keys, DType dtype, int64_t n, int dim, const float* scales);
  int64_t size() const override { return n_; }
  int dim() const override { return dim_; }
  void pack(int64_t first_group, int groups, float* panel, float* scales) const override;

 private:
  const uint8_t* keys_;
  DType dtype_;
  int64_t n_;
  int dim_;
  const float* scales_;
};

// The first `length` positions of one request in a DeepGEMM-layout paged cache (pages of 64 rows: 64*D fp8
// bytes, then 64 f32 scales), addressed through the request's block-table row.
class PagedKeySource final : public KeySource {
 public:
  PagedKeySource(const uint8_t* cache, int dim, const int32_t* table_row, int64_t length);
  // Makes pack() refuse non-finite keys or scales, naming `where`, the request and the position.
  void check_on_read(std::string_view where, int64_t request);
  int64_t size() const override { return length_; }
  int dim() const override { return dim_; }
  void pack(int64_t first_group, int groups, float* panel, float* scales) const override;
  // Pointer to the fp8 codes and the scale of one position.
  const uint8_t* row(int64_t pos) const;
  float scale(int64_t pos) const;

 private:
  const uint8_t* cache_;
  int dim_;
  const int32_t* table_;
  int64_t length_;
  bool check_ = false;
  std::string where_;
  int64_t request_ = 0;
};

// dst[0..count) = src widened to f32 exactly (F8_E4M3, BF16 or F32).
void widen_to_f32(const void* src, DType dtype, int64_t count, float* dst);

}  // namespace hilo::hisa::detail
