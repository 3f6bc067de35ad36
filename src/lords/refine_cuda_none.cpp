// The GPU refinement in a build without CUDA: refused with the reason.
#include "../core/check.hpp"
#include "refine_cuda.hpp"

namespace hilo::lords::detail {

void refine_adam_cuda(const AdamProblem& problem, QuantReport*, const std::function<void(double)>&) {
  fail("quantize: device = {} asks for the GPU refinement, but this build of hilo has no CUDA", problem.device);
}

}  // namespace hilo::lords::detail
