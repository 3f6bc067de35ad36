// The wgmma batch GEMM over clusters of 2 or 4 activation tiles of 256 rows (internal interface, no CUDA headers):
// the CTAs of a cluster share 128 weight rows, each decodes 1 / C of every chunk and sends its bf16 fragments to the
// others (distributed shared memory), so decoding, and LoRDS' scale product with it, is done once per cluster
// instead of once per activation tile. Same weights, rounding and summation order as wgmma_gemm.hpp's kernel.
#pragma once

#include "mma_gemm.hpp"

namespace hilo::lords::cuda_detail {

// The cluster size a wgmma GEMM call at 256 activation rows per CTA takes, 1 for the one-CTA kernel. By default:
// 4 for LoRDS at ranks 49-64 where 4 divides the activation tiles (and, checked at launch, the clusters take no more
// waves than the one-CTA kernel would; else that kernel runs). HILO_GEMM_XDECODE=1 or force_wgmma_cluster_gemm(1):
// 4 or 2 wherever they divide the tiles (ranks up to 64, block-wise too; HILO_GEMM_XDECODE_C=2 or 4 asks for one
// size); 0: never. force_wgmma_cluster_gemm(-1)
// restores the environment's choice.
int wgmma_cluster_size(const MmaArgs& args);
void force_wgmma_cluster_gemm(int mode);
int launch_wgmma_cluster_gemm(const MmaArgs& args, const GemmExtras& extras, int cluster, void* stream);

}  // namespace hilo::lords::cuda_detail
