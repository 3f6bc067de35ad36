// Top-k selection over rows of f32 scores (a radix select, not a sort). Ties go to the smaller position; NaN is
// never selected (it marks "no candidate"; rows with fewer candidates than k are -1 padded). Rows are independent
// and spread over threads.
#pragma once

#include "hilo/tensor.hpp"

namespace hilo {

struct TopKOptions {
  bool sorted = false;  // order each row by score (desc), ties by position; otherwise ascending position
  int threads = 0;      // 0: every hardware thread
};

// scores [R, L] F32 -> out [R, k] I32: the positions of the k largest scores of each row, -1 padded.
// With starts/ends ([R] I32, both or neither) row r only considers [starts[r], ends[r]) and positions are
// written relative to starts[r] (the ragged form used by the DSA indexer).
void topk_rows(const TensorView& scores, int k, const TensorView& out, const TensorView& starts = {},
               const TensorView& ends = {}, const TopKOptions& opt = {});

}  // namespace hilo
