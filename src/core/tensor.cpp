#include "hilo/tensor.hpp"

#include <cstdlib>
#include <cstring>

#include "check.hpp"

namespace hilo {

std::string to_string(const Device& d) {
  return d.kind == DeviceKind::CPU ? std::string("cpu") : fmt::format("cuda:{}", d.index);
}

Device parse_device(std::string_view text, std::string_view argument) {
  if (text == "cpu") return {DeviceKind::CPU, 0};
  if (text == "cuda") return {DeviceKind::CUDA, 0};
  if (text.starts_with("cuda:") && text.size() > 5 && text.size() <= 9) {
    int index = 0;
    for (char c : text.substr(5)) {
      HILO_CHECK(c >= '0' && c <= '9', "{} '{}' is not cpu, cuda or cuda:N", argument, text);
      index = index * 10 + (c - '0');
    }
    return {DeviceKind::CUDA, index};
  }
  fail("{} '{}' is not cpu, cuda or cuda:N", argument, text);
}

std::string shape_string(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

TensorView::TensorView(void* data, DType dtype, Shape shape, Shape strides, Device device)
    : data_(data), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)), device_(device) {
  for (std::size_t i = 0; i < shape_.size(); ++i)
    HILO_CHECK(shape_[i] >= 0, "TensorView: dimension {} has negative size {}", i, shape_[i]);
  HILO_CHECK(strides_.empty() || strides_.size() == shape_.size(),
             "TensorView: {} strides given for a {}-dimensional shape", strides_.size(), shape_.size());
}

TensorView::TensorView(const void* data, DType dtype, Shape shape, Shape strides, Device device)
    : TensorView(const_cast<void*>(data), dtype, std::move(shape), std::move(strides), device) {}

int64_t TensorView::size(int dim) const {
  const int d = dim < 0 ? dim + ndim() : dim;
  HILO_CHECK(d >= 0 && d < ndim(), "TensorView::size: dimension {} out of range for {} dimensions", dim, ndim());
  return shape_[d];
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

bool TensorView::is_contiguous() const {
  if (strides_.empty()) return true;
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

void TensorView::check_access(std::size_t elem_size, std::size_t align) const {
  HILO_CHECK(elem_size == dtype_size(dtype_), "TensorView::ptr: element size {} does not match dtype {}", elem_size,
             dtype_name(dtype_));
  HILO_CHECK(reinterpret_cast<uintptr_t>(data_) % align == 0,
             "TensorView::ptr: data of dtype {} is not {}-byte aligned", dtype_name(dtype_), align);
}

void Tensor::Free::operator()(void* p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (std::size_t i = 0; i < shape_.size(); ++i)
    HILO_CHECK(shape_[i] >= 0, "Tensor: dimension {} has negative size {}", i, shape_[i]);
  const std::size_t bytes = (nbytes() + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  HILO_CHECK(p != nullptr, "Tensor: out of memory allocating {} bytes for shape {}", bytes, shape_string(shape_));
  data_.reset(p);
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

Tensor Tensor::copy_of(const TensorView& src) {
  HILO_CHECK(src.device().kind == DeviceKind::CPU, "Tensor::copy_of: source is on {}, not the host",
             to_string(src.device()));
  HILO_CHECK(src.is_contiguous(), "Tensor::copy_of: source of shape {} is not contiguous", shape_string(src.shape()));
  Tensor t(src.dtype(), src.shape());
  if (t.nbytes() > 0) std::memcpy(t.data_.get(), src.data(), t.nbytes());
  return t;
}

void expect_dtype(const TensorView& t, std::string_view where, std::string_view name,
                  std::initializer_list<DType> allowed) {
  for (DType d : allowed)
    if (t.dtype() == d) return;
  std::string names;
  for (DType d : allowed) names += (names.empty() ? "" : ", ") + std::string(dtype_name(d));
  fail("{}: {} has dtype {}, expected one of {}", where, name, dtype_name(t.dtype()), names);
}

void expect_ndim(const TensorView& t, std::string_view where, std::string_view name, int ndim) {
  HILO_CHECK(t.ndim() == ndim, "{}: {} has shape {}, expected {} dimensions", where, name, shape_string(t.shape()),
             ndim);
}

void expect_shape(const TensorView& t, std::string_view where, std::string_view name, const Shape& expected) {
  HILO_CHECK(t.shape() == expected, "{}: {} has shape {}, expected {}", where, name, shape_string(t.shape()),
             shape_string(expected));
}

void expect_contiguous_on(const TensorView& t, DeviceKind device, std::string_view where, std::string_view name) {
  HILO_CHECK(!t.empty() || t.numel() == 0, "{}: {} is missing (null data)", where, name);
  HILO_CHECK(t.device().kind == device, "{}: {} is on {}, expected a {} tensor", where, name, to_string(t.device()),
             device == DeviceKind::CPU ? "host" : "CUDA");
  HILO_CHECK(t.is_contiguous(), "{}: {} with shape {} must be contiguous (row-major)", where, name,
             shape_string(t.shape()));
}

void expect_host_contiguous(const TensorView& t, std::string_view where, std::string_view name) {
  expect_contiguous_on(t, DeviceKind::CPU, where, name);
}

}  // namespace hilo
