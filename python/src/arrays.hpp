// Arrays crossing the Python boundary: any DLPack-capable object (numpy, torch, cupy, jax) becomes a hilo
// TensorView without a copy. Python may pass (array, "F8_E4M3") to reinterpret raw bits (numpy has no fp8/bf16 of
// its own; the Python layer views ml_dtypes and torch fp8 arrays as integers and names the real dtype).
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <string>
#include <string_view>
#include <vector>

#include "hilo/tensor.hpp"

namespace hilo::python {

namespace nb = nanobind;

// Keeps the imported arrays alive for the duration of one call.
class ArrayArgs {
 public:
  explicit ArrayArgs(std::string where) : where_(std::move(where)) {}
  // An input (read-only is fine). `obj` is an array or (array, dtype name). None gives an empty view.
  TensorView in(nb::handle obj, std::string_view name);
  // An output: must be writable.
  TensorView out(nb::handle obj, std::string_view name);

 private:
  TensorView convert(nb::handle obj, std::string_view name, bool writable);
  std::string where_;
  std::vector<nb::ndarray<nb::ro>> inputs_;
  std::vector<nb::ndarray<>> outputs_;
};

// The hilo dtype of a DLPack dtype, or throws naming `name`.
DType dtype_of(nb::dlpack::dtype t, std::string_view where, std::string_view name);
// A new numpy array holding a copy of `bytes` (shape, dtype from DLPack), e.g. for the packed fields.
nb::object numpy_copy(const void* data, DType dtype, const Shape& shape);

}  // namespace hilo::python
