#include <atomic>

#include "../core/check.hpp"
#include "score_kernel.hpp"

namespace hilo::hisa::detail {
namespace {

std::atomic<KernelChoice> g_override{KernelChoice::Auto};

bool cpu_has_avx512() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

KernelChoice resolve(KernelChoice choice) {
  if (choice == KernelChoice::Auto) choice = g_override.load();
  if (choice == KernelChoice::Auto) choice = cpu_has_avx512() ? KernelChoice::Avx512 : KernelChoice::Portable;
  return choice;
}

}  // namespace

ScoreGroupsFn score_kernel(KernelChoice choice) {
  switch (resolve(choice)) {
    case KernelChoice::Avx512:
#if defined(__x86_64__)
      HILO_CHECK(cpu_has_avx512(), "score kernel: this CPU has no AVX-512F/BW/VL");
      return &score_groups_avx512;
#else
      fail("score kernel: AVX-512 is not built on this architecture");
#endif
    default: return &score_groups_portable;
  }
}

PackGroupFn pack_kernel(KernelChoice choice) {
  switch (resolve(choice)) {
    case KernelChoice::Avx512:
#if defined(__x86_64__)
      HILO_CHECK(cpu_has_avx512(), "pack kernel: this CPU has no AVX-512F/BW/VL");
      return &pack_group_avx512;
#else
      fail("pack kernel: AVX-512 is not built on this architecture");
#endif
    default: return &pack_group_portable;
  }
}

const char* score_kernel_name(KernelChoice choice) {
  return resolve(choice) == KernelChoice::Avx512 ? "avx512" : "portable";
}

void set_kernel_override(KernelChoice choice) { g_override.store(choice); }

}  // namespace hilo::hisa::detail

namespace hilo::hisa {

const char* cpu_kernel() { return detail::score_kernel_name(); }

}  // namespace hilo::hisa

namespace hilo::hisa::detail {

KernelChoice kernel_override() { return g_override.load(); }

}  // namespace hilo::hisa::detail
