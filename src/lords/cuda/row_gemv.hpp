// The row-owning block-wise GEMV (row_gemv.cu; internal interface, no CUDA headers): 1..8 activation rows,
// power-of-two blocks. Arguments as for the cluster GEMV (mma_gemv.hpp).
#pragma once

#include "mma_gemv.hpp"

namespace hilo::lords::cuda_detail {

// Whether launch_row_gemv takes this call (block-wise, power-of-two block, batch <= 8; HILO_GEMV_ROWS=0 turns it
// off for A/B runs).
bool row_gemv_serves(const MmaArgs& g);
// A CUDA error code (0 = success), or -1 where the layer's slab does not fit in shared memory (the caller then uses
// the cluster GEMV).
int launch_row_gemv(const MmaArgs& g, void* stream);

}  // namespace hilo::lords::cuda_detail
