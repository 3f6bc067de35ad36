#include "linear.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "../core/check.hpp"
#include "hilo/dtype.hpp"
#include "hilo/lords.hpp"

namespace hilo::llama::detail {
namespace {

class Bf16Linear final : public Linear {
 public:
  Bf16Linear(std::vector<uint16_t> w, int64_t rows, int64_t cols) : w_(std::move(w)), rows_(rows), cols_(cols) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void forward(const float* x, int64_t batch, float* y, int threads) const override {
    lords::matmul_bf16(w_.data(), rows_, cols_, x, batch, y, threads);
  }
  std::string format() const override { return "bf16"; }

 private:
  std::vector<uint16_t> w_;
  int64_t rows_, cols_;
};

class F32Linear final : public Linear {
 public:
  F32Linear(std::vector<float> w, int64_t rows, int64_t cols, std::string source)
      : w_(std::move(w)), rows_(rows), cols_(cols), source_(std::move(source)) {}
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void forward(const float* x, int64_t batch, float* y, int threads) const override {
    lords::matmul_f32(w_.data(), rows_, cols_, cols_, x, batch, y, threads);
  }
  std::string format() const override { return source_; }

 private:
  std::vector<float> w_;
  int64_t rows_, cols_;
  std::string source_;
};

// Runs the packed codes and scales through lords::matmul: the weight is never dequantised.
class QuantizedLinear final : public Linear {
 public:
  explicit QuantizedLinear(lords::QuantizedLinear q) : q_(std::move(q)) {}
  int64_t rows() const override { return q_.rows; }
  int64_t cols() const override { return q_.cols; }
  void forward(const float* x, int64_t batch, float* y, int threads) const override {
    lords::matmul(q_, x, batch, y, threads);
  }
  std::string format() const override {
    if (q_.method == lords::Method::Lords) return fmt::format("lords {} r{}", q_.codebook.name(), q_.rank);
    return fmt::format("blockwise {} B{}", q_.codebook.name(), q_.block);
  }

 private:
  lords::QuantizedLinear q_;
};

// NaN / Inf in a weight would make every result NaN without saying why: refuse it by name. Checks the exponent
// bits of the stored values (any alignment).
void check_finite(const Checkpoint& checkpoint, const TensorEntry& e) {
  const std::size_t size = dtype_size(e.dtype), n = e.nbytes / size;
  for (std::size_t i = 0; i < n; ++i) {
    bool finite = true;
    if (size == 2) {
      uint16_t v;
      std::memcpy(&v, e.data + i * 2, 2);
      finite = e.dtype == DType::BF16 ? (v & 0x7F80u) != 0x7F80u : (v & 0x7C00u) != 0x7C00u;
    } else {
      uint32_t v;
      std::memcpy(&v, e.data + i * 4, 4);
      finite = (v & 0x7F800000u) != 0x7F800000u;
    }
    HILO_CHECK(finite, "{}: tensor '{}' holds a non-finite value at flat index {}", checkpoint.path(), e.name, i);
  }
}

}  // namespace

QuantizedLayers quantized_layer_map(const Checkpoint& checkpoint) {
  QuantizedLayers out;
  for (auto& info : lords::quantized_layers(checkpoint)) out.emplace(info.base, info);
  return out;
}

const TensorEntry& float_entry(const Checkpoint& checkpoint, const std::string& name, const Shape& shape) {
  const TensorEntry* e = checkpoint.find(name);
  HILO_CHECK(e != nullptr, "{}: tensor '{}' is missing", checkpoint.path(), name);
  HILO_CHECK(e->dtype == DType::BF16 || e->dtype == DType::F16 || e->dtype == DType::F32,
             "{}: tensor '{}' has dtype {}, expected BF16, F16 or F32", checkpoint.path(), name, dtype_name(e->dtype));
  HILO_CHECK(e->shape == shape, "{}: tensor '{}' has shape {}, expected {} (from config.json)", checkpoint.path(),
             name, shape_string(e->shape), shape_string(shape));
  check_finite(checkpoint, *e);
  return *e;
}

std::vector<float> load_f32(const Checkpoint& checkpoint, const std::string& name, const Shape& shape) {
  const TensorEntry& e = float_entry(checkpoint, name, shape);
  std::vector<float> out(static_cast<std::size_t>(e.view().numel()));
  convert(e.data, e.dtype, out.data(), DType::F32, out.size());
  return out;
}

std::unique_ptr<Linear> dense_linear(const TensorView& weight, const std::string& name) {
  HILO_CHECK(weight.ndim() == 2, "{}: a linear weight must be 2-D, got {}", name, shape_string(weight.shape()));
  const int64_t rows = weight.size(0), cols = weight.size(1);
  const auto n = static_cast<std::size_t>(rows * cols);
  if (weight.dtype() == DType::BF16) {
    std::vector<uint16_t> w(n);
    convert(weight.data(), DType::BF16, w.data(), DType::BF16, n);  // a plain copy (the mapping may be unaligned)
    return std::make_unique<Bf16Linear>(std::move(w), rows, cols);
  }
  HILO_CHECK(weight.dtype() == DType::F16 || weight.dtype() == DType::F32, "{}: dtype {} is not BF16, F16 or F32",
             name, dtype_name(weight.dtype()));
  std::vector<float> w(n);
  convert(weight.data(), weight.dtype(), w.data(), DType::F32, n);
  return std::make_unique<F32Linear>(std::move(w), rows, cols, weight.dtype() == DType::F16 ? "f16" : "f32");
}

std::unique_ptr<Linear> load_linear(const Checkpoint& checkpoint, const QuantizedLayers& quantized,
                                    const std::string& base, int64_t rows, int64_t cols) {
  if (auto it = quantized.find(base); it != quantized.end()) {
    const lords::LayerInfo& info = it->second;
    HILO_CHECK(info.rows == rows && info.cols == cols, "{}: quantized layer '{}' is [{}, {}], expected [{}, {}]",
               checkpoint.path(), base, info.rows, info.cols, rows, cols);
    return std::make_unique<QuantizedLinear>(lords::load_layer(checkpoint, info));
  }
  const std::string name = lords::weight_name(base);
  return dense_linear(float_entry(checkpoint, name, {rows, cols}).view(), name);
}

}  // namespace hilo::llama::detail
