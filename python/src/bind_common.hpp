// Shared pieces of the binding files: the module's registration functions and the CUDA-stream argument.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>

#include "hilo/error.hpp"
#include "hilo/tensor.hpp"

namespace hilo::python {

namespace nb = nanobind;

void bind_core(nb::module_& m);
void bind_hisa(nb::module_& m);
void bind_lords(nb::module_& m);

// Streams cross as integers (torch.cuda.Stream.cuda_stream); 0 is the default stream.
inline void* stream_ptr(uintptr_t stream) { return reinterpret_cast<void*>(stream); }

// True when `view` lives on a CUDA device; throws when CUDA is wanted but this build has none.
inline bool on_cuda(const TensorView& view, const char* where) {
  if (view.device().kind != DeviceKind::CUDA) return false;
#ifndef HILO_WITH_CUDA
  throw Error(std::string(where) + ": this hilo was built without CUDA, the inputs are on " + to_string(view.device()));
#else
  (void)where;
  return true;
#endif
}

}  // namespace hilo::python
