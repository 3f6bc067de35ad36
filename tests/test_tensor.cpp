#include "hilo/error.hpp"
#include "test_util.hpp"

namespace hilo {
namespace {

TEST(Tensor, ViewShapeAndContiguity) {
  float data[24] = {};
  TensorView v(data, DType::F32, {2, 3, 4});
  EXPECT_EQ(v.numel(), 24);
  EXPECT_EQ(v.size(-1), 4);
  EXPECT_TRUE(v.is_contiguous());
  TensorView strided(data, DType::F32, {2, 3}, {12, 2});
  EXPECT_FALSE(strided.is_contiguous());
  EXPECT_HILO_ERROR(v.size(3), "dimension 3 out of range");
  EXPECT_HILO_ERROR(TensorView(data, DType::F32, {2, -1}), "negative size");
  EXPECT_HILO_ERROR(TensorView(data, DType::F32, {2, 3}, {1}), "1 strides given");
}

TEST(Tensor, DevicesParseAndPrint) {
  EXPECT_EQ(parse_device("cpu"), (Device{DeviceKind::CPU, 0}));
  EXPECT_EQ(parse_device("cuda"), (Device{DeviceKind::CUDA, 0}));
  EXPECT_EQ(parse_device("cuda:12"), (Device{DeviceKind::CUDA, 12}));
  EXPECT_EQ(to_string(parse_device("cuda:3")), "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:1x", "cuda:12345", "CPU"})
    EXPECT_HILO_ERROR(parse_device(bad, "--device"), "--device '");
}

TEST(Tensor, TypedAccessChecksSizeAndAlignment) {
  alignas(8) unsigned char buf[16] = {};
  TensorView ok(buf, DType::F32, {2});
  EXPECT_NO_THROW(ok.ptr<float>());
  EXPECT_HILO_ERROR(ok.ptr<double>(), "element size 8 does not match dtype F32");
  TensorView misaligned(buf + 1, DType::F32, {2});
  EXPECT_HILO_ERROR(misaligned.ptr<float>(), "not 4-byte aligned");
}

TEST(Tensor, OwningCopyAndChecks) {
  Tensor t(DType::I32, {3, 5});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.view().data()) % 64, 0u);
  for (int i = 0; i < 15; ++i) t.ptr<int32_t>()[i] = i;
  Tensor c = Tensor::copy_of(t);
  EXPECT_EQ(c.ptr<int32_t>()[14], 14);
  EXPECT_HILO_ERROR(expect_shape(t, "op", "x", {3, 4}), "op: x has shape [3, 5], expected [3, 4]");
  EXPECT_HILO_ERROR(expect_dtype(t, "op", "x", {DType::F32, DType::BF16}), "x has dtype I32, expected one of F32, BF16");
  TensorView gpu(t.view().data(), DType::I32, {3, 5}, {}, Device{DeviceKind::CUDA, 0});
  EXPECT_HILO_ERROR(expect_host_contiguous(gpu, "op", "x"), "x is on cuda:0");
}

}  // namespace
}  // namespace hilo
