// The launch order of the wgmma GEMM's output tiles (wgmma_gemm.cu). CTAs launch in groups of `group` row tiles (128
// weight rows each) x all batch tiles (the activation rows of one CTA), row tiles fastest inside a group, so that a
// wave reads a group's codes and activations once from DRAM and then from L2. With row tiles fastest over the whole
// layer (group = row_ctas), a layer with more row tiles than a wave holds reads its whole weight once per wave.
// Host and device code, so that the CPU tests check the mapping.
#pragma once

#include "../../core/host_device.hpp"

namespace hilo::lords::raster {

struct CtaTile {
  int row_cta, batch_tile;
};

// The tile of the CTA launched `linear`-th (0 <= linear < row_ctas * batch_tiles, 1 <= group <= row_ctas).
HILO_HOST_DEVICE CtaTile tile_of(int linear, int row_ctas, int batch_tiles, int group) {
  const int first = linear / (group * batch_tiles) * group;  // the group's first row tile
  const int rows_here = row_ctas - first < group ? row_ctas - first : group;  // the last group may be narrower
  const int within = linear - first * batch_tiles;
  return {first + within % rows_here, within / rows_here};
}

}  // namespace hilo::lords::raster
