// The scoring kernel shared by every CPU indexer path: scores of one query against groups of 16 keys.
//
// Key panel layout (what pack_* in key_source.hpp writes): group g holds 16 keys as D rows of 16 f32, i.e.
// panel[(g * D + d) * 16 + lane], and scales[g * 16 + lane]. Lanes are keys, so each lane accumulates its dot
// product over d in order with one rounding per step: exactly reference::score's arithmetic, bit for bit.
#pragma once

namespace hilo::hisa::detail {

constexpr int kGroup = 16;

// out[g*16 + lane] = sum_h w[h] * relu(dot(q[h,:], key) * scale), for `groups` groups. q is [H][D] f32.
using ScoreGroupsFn = void (*)(const float* q, const float* w, int H, int D, const float* panel, const float* scales,
                               int groups, float* out);

void score_groups_portable(const float* q, const float* w, int H, int D, const float* panel, const float* scales,
                           int groups, float* out);
#if defined(__x86_64__)
void score_groups_avx512(const float* q, const float* w, int H, int D, const float* panel, const float* scales,
                         int groups, float* out);
#endif

enum class KernelChoice { Auto, Portable, Avx512 };
// The kernel to use: the best the CPU supports, or a forced one (tests). Throws if the CPU lacks it.
ScoreGroupsFn score_kernel(KernelChoice choice = KernelChoice::Auto);
const char* score_kernel_name(KernelChoice choice = KernelChoice::Auto);
// Forces the kernel every indexer call uses from now on (Auto restores the default). For tests and benchmarks.
void set_kernel_override(KernelChoice choice);
KernelChoice kernel_override();

}  // namespace hilo::hisa::detail

namespace hilo::hisa::detail {

// Widens 16 key rows (nullptr: a padding row of zeros) of `dtype` (F8_E4M3, BF16, F32) into one panel group:
// out[d * 16 + lane] = row[lane][d]. Exact conversions, so every packer gives the same panel.
using PackGroupFn = void (*)(const void* const rows[kGroup], int dtype, int D, float* out);
void pack_group_portable(const void* const rows[kGroup], int dtype, int D, float* out);
#if defined(__x86_64__)
void pack_group_avx512(const void* const rows[kGroup], int dtype, int D, float* out);
#endif
PackGroupFn pack_kernel(KernelChoice choice = KernelChoice::Auto);

}  // namespace hilo::hisa::detail
