// A non-owning tensor view (pointer, dtype, shape, strides, device) and a small owning tensor for host data.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hilo/dtype.hpp"

namespace hilo {

enum class DeviceKind : uint8_t { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
};

std::string to_string(const Device& d);
// "cpu", "cuda" (device 0) or "cuda:N"; anything else throws naming `argument`.
Device parse_device(std::string_view text, std::string_view argument = "device");
using Shape = std::vector<int64_t>;
std::string shape_string(const Shape& s);

// Strides are in elements. An empty `strides` means row-major contiguous.
class TensorView {
 public:
  TensorView() = default;
  TensorView(void* data, DType dtype, Shape shape, Shape strides = {}, Device device = {});
  TensorView(const void* data, DType dtype, Shape shape, Shape strides = {}, Device device = {});

  void* data() const { return data_; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  Device device() const { return device_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int dim) const;  // negative dims count from the end
  int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return data_ == nullptr; }
  bool is_contiguous() const;

  // Typed pointer; throws if the element size of T does not match or the pointer is misaligned for T.
  template <typename T>
  T* ptr() const {
    check_access(sizeof(T), alignof(T));
    return static_cast<T*>(data_);
  }

 private:
  void check_access(std::size_t elem_size, std::size_t align) const;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Shape shape_;
  Shape strides_;
  Device device_;
};

// Owning, 64-byte aligned, contiguous host tensor.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);
  static Tensor copy_of(const TensorView& src);  // contiguous copy of a host view

  TensorView view() const { return TensorView(data_.get(), dtype_, shape_); }
  operator TensorView() const { return view(); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  template <typename T>
  T* ptr() const {
    return view().ptr<T>();
  }

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> data_;
  DType dtype_ = DType::F32;
  Shape shape_;
};

// Argument checks shared by every API. Each throws hilo::Error naming `where` and `name`.
void expect_dtype(const TensorView& t, std::string_view where, std::string_view name,
                  std::initializer_list<DType> allowed);
void expect_shape(const TensorView& t, std::string_view where, std::string_view name, const Shape& expected);
void expect_ndim(const TensorView& t, std::string_view where, std::string_view name, int ndim);
void expect_host_contiguous(const TensorView& t, std::string_view where, std::string_view name);
void expect_contiguous_on(const TensorView& t, DeviceKind device, std::string_view where, std::string_view name);

}  // namespace hilo
