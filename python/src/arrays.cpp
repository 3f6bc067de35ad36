#include "arrays.hpp"

#include <nanobind/stl/string.h>

#include <cstring>

#include "hilo/error.hpp"

namespace hilo::python {

namespace {

std::string describe(nb::dlpack::dtype t) {
  return "code " + std::to_string(int(t.code)) + ", " + std::to_string(int(t.bits)) + " bits, " +
         std::to_string(int(t.lanes)) + " lanes";
}

nb::dlpack::dtype dlpack_of(DType t) {
  using C = nb::dlpack::dtype_code;
  auto make = [](C c, int bits) { return nb::dlpack::dtype{uint8_t(c), uint8_t(bits), 1}; };
  switch (t) {
    case DType::BOOL: return make(C::Bool, 8);
    case DType::U8: return make(C::UInt, 8);
    case DType::I8: return make(C::Int, 8);
    case DType::U16: return make(C::UInt, 16);
    case DType::I16: return make(C::Int, 16);
    case DType::U32: return make(C::UInt, 32);
    case DType::I32: return make(C::Int, 32);
    case DType::U64: return make(C::UInt, 64);
    case DType::I64: return make(C::Int, 64);
    case DType::F16: return make(C::Float, 16);
    case DType::F32: return make(C::Float, 32);
    case DType::F64: return make(C::Float, 64);
    // numpy has no bf16 or fp8: their bits travel as unsigned integers of the same width.
    case DType::BF16: return make(C::UInt, 16);
    case DType::F8_E4M3:
    case DType::F8_E5M2: return make(C::UInt, 8);
  }
  throw Error("numpy_copy: unknown dtype");
}

}  // namespace

DType dtype_of(nb::dlpack::dtype t, std::string_view where, std::string_view name) {
  using C = nb::dlpack::dtype_code;
  if (t.lanes == 1) {
    switch (C(t.code)) {
      case C::Bool: if (t.bits == 8) return DType::BOOL; break;
      case C::UInt:
        if (t.bits == 8) return DType::U8;
        if (t.bits == 16) return DType::U16;
        if (t.bits == 32) return DType::U32;
        if (t.bits == 64) return DType::U64;
        break;
      case C::Int:
        if (t.bits == 8) return DType::I8;
        if (t.bits == 16) return DType::I16;
        if (t.bits == 32) return DType::I32;
        if (t.bits == 64) return DType::I64;
        break;
      case C::Float:
        if (t.bits == 16) return DType::F16;
        if (t.bits == 32) return DType::F32;
        if (t.bits == 64) return DType::F64;
        break;
      case C::Bfloat: if (t.bits == 16) return DType::BF16; break;
      case C::Float8_E4M3FN: if (t.bits == 8) return DType::F8_E4M3; break;
      case C::Float8_E5M2: if (t.bits == 8) return DType::F8_E5M2; break;
      default: break;
    }
  }
  throw Error(std::string(where) + ": " + std::string(name) + " has an unsupported element type (" + describe(t) + ")");
}

TensorView ArrayArgs::in(nb::handle obj, std::string_view name) { return convert(obj, name, false); }
TensorView ArrayArgs::out(nb::handle obj, std::string_view name) { return convert(obj, name, true); }

TensorView ArrayArgs::convert(nb::handle obj, std::string_view name, bool writable) {
  if (obj.is_none()) return {};
  std::string retag;
  nb::handle array = obj;
  if (nb::isinstance<nb::tuple>(obj)) {
    nb::tuple t = nb::borrow<nb::tuple>(obj);
    if (t.size() != 2 || !nb::isinstance<nb::str>(t[1]))
      throw Error(where_ + ": " + std::string(name) + " must be an array or (array, dtype name)");
    array = t[0];
    retag = nb::cast<std::string>(t[1]);
  }
  const void* data = nullptr;
  nb::dlpack::dtype dt{};
  Shape shape, strides;
  int32_t device_type = 0, device_id = 0;
  auto fill = [&](const auto& a) {
    data = a.data();
    dt = a.dtype();
    for (size_t i = 0; i < a.ndim(); ++i) {
      shape.push_back(a.shape(i));
      strides.push_back(a.stride(i));
    }
    device_type = a.device_type();
    device_id = a.device_id();
  };
  if (writable) {
    nb::ndarray<> a;
    if (!nb::try_cast(array, a))
      throw Error(where_ + ": " + std::string(name) + " must be a writable array (numpy, torch, ...), got " +
                  nb::cast<std::string>(nb::str(array.type())));
    fill(a);
    outputs_.push_back(std::move(a));
  } else {
    nb::ndarray<nb::ro> a;
    if (!nb::try_cast(array, a))
      throw Error(where_ + ": " + std::string(name) + " must be an array (numpy, torch, ...), got " +
                  nb::cast<std::string>(nb::str(array.type())));
    fill(a);
    inputs_.push_back(std::move(a));
  }
  DType dtype = dtype_of(dt, where_, name);
  if (!retag.empty()) {
    const DType real = parse_dtype(retag, std::string(name) + " dtype");
    if (dtype_size(real) != dtype_size(dtype))
      throw Error(where_ + ": " + std::string(name) + " is tagged " + retag + " but its elements have " +
                  std::to_string(dtype_size(dtype)) + " bytes");
    dtype = real;
  }
  Device device;
  if (device_type == nb::device::cpu::value) {
    device = Device{DeviceKind::CPU, 0};
  } else if (device_type == nb::device::cuda::value || device_type == nb::device::cuda_managed::value) {
    device = Device{DeviceKind::CUDA, device_id};
  } else {
    throw Error(where_ + ": " + std::string(name) + " is on an unsupported device (DLPack type " +
                std::to_string(device_type) + ")");
  }
  // A zero-size array may have a null pointer; hilo's views use null for "absent", so point at a dummy byte.
  static const uint8_t dummy[64] = {};
  if (data == nullptr) data = dummy;
  return TensorView(data, dtype, shape, strides, device);
}

nb::object numpy_copy(const void* data, DType dtype, const Shape& shape) {
  size_t count = 1;
  for (int64_t s : shape) count *= static_cast<size_t>(s);
  const size_t bytes = count * dtype_size(dtype);
  auto* buffer = new uint8_t[bytes > 0 ? bytes : 1];
  if (bytes > 0) std::memcpy(buffer, data, bytes);
  nb::capsule owner(buffer, [](void* p) noexcept { delete[] static_cast<uint8_t*>(p); });
  std::vector<size_t> dims(shape.begin(), shape.end());
  nb::ndarray<nb::numpy> array(buffer, dims.size(), dims.data(), owner, nullptr, dlpack_of(dtype));
  return array.cast();
}

}  // namespace hilo::python
