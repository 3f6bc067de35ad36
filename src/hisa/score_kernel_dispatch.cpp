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

// The AVX-512 or the portable version of a kernel, as `choice` (or the override, or the CPU) decides.
template <typename Fn>
Fn pick(KernelChoice choice, Fn avx512, Fn portable, const char* what) {
  if (resolve(choice) != KernelChoice::Avx512) return portable;
  HILO_CHECK(cpu_has_avx512() && avx512 != nullptr, "{} kernel: this CPU or build has no AVX-512F/BW/VL", what);
  return avx512;
}

#if defined(__x86_64__)
ScoreGroupsFn score_kernel(KernelChoice choice) {
  return pick<ScoreGroupsFn>(choice, &score_groups_avx512, &score_groups_portable, "score");
}
PackGroupFn pack_kernel(KernelChoice choice) {
  return pick<PackGroupFn>(choice, &pack_group_avx512, &pack_group_portable, "pack");
}
#else
ScoreGroupsFn score_kernel(KernelChoice choice) {
  return pick<ScoreGroupsFn>(choice, nullptr, &score_groups_portable, "score");
}
PackGroupFn pack_kernel(KernelChoice choice) { return pick<PackGroupFn>(choice, nullptr, &pack_group_portable, "pack"); }
#endif

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
