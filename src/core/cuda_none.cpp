// CUDA queries in a build without CUDA.
#include "hilo/cuda.hpp"

namespace hilo::cuda {

bool built_with_cuda() { return false; }
int device_count() { return 0; }
std::string device_description(int) { return {}; }

}  // namespace hilo::cuda
