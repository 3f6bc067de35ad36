// The extension module `hilo._hilo`: thin bindings of the C++ library. The Python package (python/hilo) adds the
// friendly signatures, output allocation in the caller's array library, and the PyTorch layer.
#include <nanobind/stl/string.h>

#include "bind_common.hpp"
#include "hilo/cuda.hpp"
#include "hilo/dtype.hpp"

namespace hilo::python {

void bind_core(nb::module_& m) {
  using namespace nb::literals;
  nb::exception<Error>(m, "HiloError", PyExc_ValueError);
  m.def("built_with_cuda", &cuda::built_with_cuda);
  m.def("cuda_device_count", &cuda::device_count);
  m.def("cuda_device_description", &cuda::device_description, "device"_a);
  m.attr("version") = HILO_VERSION;
}

}  // namespace hilo::python

NB_MODULE(_hilo, m) {
  hilo::python::bind_core(m);
  hilo::python::bind_hisa(m);
  hilo::python::bind_lords(m);
}
