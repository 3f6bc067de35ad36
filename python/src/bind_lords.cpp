// LoRDS and block-wise quantization: codebooks, quantize / dequantize, the packed layer (fields as numpy arrays,
// built back from arrays), layer files, whole checkpoints, and the CPU and CUDA matmuls.
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "arrays.hpp"
#include "bind_common.hpp"
#include "core/check.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_io.hpp"
#include "lords/codes.hpp"
#ifdef HILO_WITH_CUDA
#include "hilo/lords_cuda.hpp"
#endif

namespace hilo::python {
namespace {

using namespace nb::literals;
using lords::QuantizedLinear;

// Copies a host array argument into a vector after checking its dtype and shape.
template <typename T>
std::vector<T> take(ArrayArgs& args, nb::handle obj, const char* name, DType dtype, const Shape& shape) {
  const TensorView v = args.in(obj, name);
  HILO_CHECK(!v.empty(), "QuantizedLinear: {} is missing", name);
  HILO_CHECK(v.device().kind == DeviceKind::CPU, "QuantizedLinear: {} must be on the CPU, is on {}", name,
             to_string(v.device()));
  HILO_CHECK(v.dtype() == dtype || (dtype == DType::BF16 && v.dtype() == DType::U16),
             "QuantizedLinear: {} has dtype {}, expected {}", name, dtype_name(v.dtype()), dtype_name(dtype));
  expect_shape(v, "QuantizedLinear", name, shape);
  expect_host_contiguous(v, "QuantizedLinear", name);
  std::vector<T> out(static_cast<size_t>(v.numel()));
  if (!out.empty()) std::memcpy(out.data(), v.data(), out.size() * sizeof(T));
  return out;
}

QuantizedLinear from_arrays(const std::string& method, const std::string& codebook, int bits, int block, int64_t rows,
                            int64_t cols, nb::handle qweight, nb::handle scales, nb::handle b, nb::handle a) {
  QuantizedLinear q;
  q.method = lords::parse_method(method);
  q.codebook = lords::make_codebook(lords::parse_codebook(codebook), bits);
  q.block = block;
  q.rows = rows;
  q.cols = cols;
  HILO_CHECK(rows > 0 && cols > 0, "QuantizedLinear: rows = {} and cols = {} must be positive", rows, cols);
  ArrayArgs args("QuantizedLinear");
  q.qweight = take<uint8_t>(args, qweight, "qweight", DType::U8, {rows, cols * bits / 8});
  if (q.method == lords::Method::Blockwise) {
    HILO_CHECK(block > 0 && cols % block == 0, "QuantizedLinear: block = {} must divide cols = {}", block, cols);
    q.scales = take<uint16_t>(args, scales, "scales", DType::BF16, {rows, cols / block});
  } else {
    const TensorView bv = args.in(b, "b");
    HILO_CHECK(!bv.empty() && bv.ndim() == 2, "QuantizedLinear: b must be a [rows, rank] array");
    q.rank = static_cast<int>(bv.size(1));
    q.b = take<uint16_t>(args, b, "b", DType::BF16, {rows, q.rank});
    q.a = take<uint16_t>(args, a, "a", DType::BF16, {q.rank, cols});
  }
  lords::check_layer(q, "QuantizedLinear");
  return q;
}

// bf16 values as an ml_dtypes.bfloat16 numpy array (numpy has no bf16 of its own).
nb::object bf16_array(const std::vector<uint16_t>& v, const Shape& shape) {
  return numpy_copy(v.data(), DType::BF16, shape).attr("view")(nb::module_::import_("ml_dtypes").attr("bfloat16"));
}

nb::dict report_dict(const lords::QuantReport& r) {
  nb::dict d;
  d["rel_error"] = r.rel_error;
  d["init_rel_error"] = r.init_rel_error;
  d["seconds"] = r.seconds;
  d["steps"] = r.steps;
  d["trace"] = r.trace;
  return d;
}

lords::QuantConfig quant_config(const std::string& method, const std::string& codebook, int bits, int block, int rank,
                                const std::string& optimizer, int steps, float learning_rate, uint64_t seed,
                                int threads, int device) {
  lords::QuantConfig cfg;
  cfg.method = lords::parse_method(method);
  cfg.codebook = lords::parse_codebook(codebook);
  cfg.bits = bits;
  cfg.block = block;
  cfg.rank = rank;
  cfg.optimizer = lords::parse_optimizer(optimizer);
  cfg.steps = steps;
  cfg.learning_rate = learning_rate;
  cfg.seed = seed;
  cfg.threads = threads;
  cfg.device = device;
  return cfg;
}

nb::tuple quantize(nb::handle w, const std::string& method, const std::string& codebook, int bits, int block, int rank,
                   const std::string& optimizer, int steps, float learning_rate, uint64_t seed, int threads, int device,
                   nb::handle act_sq, nb::object on_step) {
  ArrayArgs args("quantize");
  const TensorView wv = args.in(w, "w");
  lords::QuantConfig cfg = quant_config(method, codebook, bits, block, rank, optimizer, steps, learning_rate, seed,
                                         threads, device);
  if (!act_sq.is_none()) {
    const TensorView v = args.in(act_sq, "act_sq");
    expect_dtype(v, "quantize", "act_sq", {DType::F32});
    expect_ndim(v, "quantize", "act_sq", 1);
    expect_host_contiguous(v, "quantize", "act_sq");
    const float* p = v.ptr<const float>();
    cfg.act_sq.assign(p, p + v.numel());
  }
  if (!on_step.is_none())
    cfg.on_step = [on_step](double fraction) {
      nb::gil_scoped_acquire acquire;
      on_step(fraction);
    };
  lords::QuantReport report;
  QuantizedLinear q;
  {
    nb::gil_scoped_release release;
    q = lords::quantize(wv, cfg, &report);
  }
  return nb::make_tuple(std::move(q), report_dict(report));
}

nb::object dequantize(const QuantizedLinear& q) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  {
    nb::gil_scoped_release release;
    lords::dequantize(q, out.data());
  }
  return numpy_copy(out.data(), DType::F32, {q.rows, q.cols});
}

void matmul_cpu(const QuantizedLinear& q, nb::handle x, nb::handle y, int threads) {
  ArrayArgs args("matmul");
  const TensorView xv = args.in(x, "x"), yv = args.out(y, "y");
  for (const auto& [v, name] : {std::pair{&xv, "x"}, std::pair{&yv, "y"}}) {
    expect_dtype(*v, "matmul", name, {DType::F32});
    expect_ndim(*v, "matmul", name, 2);
    expect_host_contiguous(*v, "matmul", name);
  }
  const int64_t batch = xv.size(0);
  expect_shape(xv, "matmul", "x", {batch, q.cols});
  expect_shape(yv, "matmul", "y", {batch, q.rows});
  nb::gil_scoped_release release;
  lords::matmul(q, xv.ptr<const float>(), batch, yv.ptr<float>(), threads);
}

lords::ProgressFn progress_fn(nb::object callback) {
  if (callback.is_none()) return {};
  return [callback](const lords::Progress& p) {
    nb::gil_scoped_acquire acquire;
    callback(p.tensor, p.fraction);
  };
}

nb::dict checkpoint_result(const lords::CheckpointQuantResult& r) {
  nb::list tensors;
  for (const auto& t : r.tensors) {
    nb::dict d;
    d["name"] = t.name;
    d["rows"] = t.rows;
    d["cols"] = t.cols;
    d["rank"] = t.rank;
    d["bits_per_weight"] = t.bits_per_weight;
    d["rel_error"] = t.rel_error;
    d["init_rel_error"] = t.init_rel_error;
    d["seconds"] = t.seconds;
    d["steps"] = t.steps;
    tensors.append(d);
  }
  nb::dict d;
  d["tensors"] = tensors;
  d["carried"] = r.carried;
  d["rel_error_mean"] = r.rel_error_mean;
  d["bits_per_weight"] = r.bits_per_weight;
  d["seconds"] = r.seconds;
  return d;
}

nb::dict inspect(const std::string& path) {
  const lords::CheckpointSummary s = lords::inspect_checkpoint(path);
  nb::list tensors;
  for (const auto& t : s.tensors) {
    nb::dict d;
    d["name"] = t.name;
    d["dtype"] = t.dtype;
    d["shape"] = t.shape;
    d["bits_per_weight"] = t.bits_per_weight;
    tensors.append(d);
  }
  nb::dict d;
  d["path"] = s.path;
  d["tensors"] = tensors;
  d["parameters"] = s.parameters;
  d["quantized_parameters"] = s.quantized_parameters;
  d["quantized_layers"] = s.quantized_layers;
  d["quantized_bits_per_weight"] = s.quantized_bits_per_weight;
  d["file_bytes"] = s.file_bytes;
  return d;
}

}  // namespace

void bind_lords(nb::module_& m) {
  nb::class_<lords::Codebook>(m, "Codebook")
      .def_prop_ro("kind", [](const lords::Codebook& c) { return c.kind == lords::CodebookKind::NF ? "nf" : "int"; })
      .def_ro("bits", &lords::Codebook::bits)
      .def_ro("values", &lords::Codebook::values)
      .def_prop_ro("name", &lords::Codebook::name)
      .def("__repr__", [](const lords::Codebook& c) { return "Codebook(" + c.name() + ")"; });
  m.def("make_codebook", [](const std::string& kind, int bits) {
    return lords::make_codebook(lords::parse_codebook(kind), bits);
  }, "kind"_a, "bits"_a);
  m.def("parity_rank", &lords::parity_rank, "rows"_a, "cols"_a, "block"_a);

  nb::class_<QuantizedLinear>(m, "QuantizedLinear")
      .def_static("from_arrays", &from_arrays, "method"_a, "codebook"_a, "bits"_a, "block"_a, "rows"_a, "cols"_a,
                  "qweight"_a, "scales"_a.none(), "b"_a.none(), "a"_a.none())
      .def_prop_ro("method", [](const QuantizedLinear& q) { return lords::to_string(q.method); })
      .def_ro("codebook", &QuantizedLinear::codebook)
      .def_ro("block", &QuantizedLinear::block)
      .def_ro("rank", &QuantizedLinear::rank)
      .def_ro("rows", &QuantizedLinear::rows)
      .def_ro("cols", &QuantizedLinear::cols)
      .def_prop_ro("bits_per_weight", &QuantizedLinear::bits_per_weight)
      .def_prop_ro("qweight", [](const QuantizedLinear& q) {
        return numpy_copy(q.qweight.data(), DType::U8, {q.rows, q.row_bytes()});
      })
      .def_prop_ro("scales", [](const QuantizedLinear& q) -> nb::object {
        if (q.method != lords::Method::Blockwise) return nb::none();
        return bf16_array(q.scales, {q.rows, q.cols / q.block});
      })
      .def_prop_ro("b", [](const QuantizedLinear& q) -> nb::object {
        if (q.method != lords::Method::Lords) return nb::none();
        return bf16_array(q.b, {q.rows, q.rank});
      })
      .def_prop_ro("a", [](const QuantizedLinear& q) -> nb::object {
        if (q.method != lords::Method::Lords) return nb::none();
        return bf16_array(q.a, {q.rank, q.cols});
      });

  m.def("quantize", &quantize, "w"_a, "method"_a, "codebook"_a, "bits"_a, "block"_a, "rank"_a, "optimizer"_a,
        "steps"_a, "learning_rate"_a, "seed"_a, "threads"_a, "device"_a, "act_sq"_a.none(), "on_step"_a.none());
  m.def("dequantize", &dequantize, "q"_a);
  m.def("matmul_cpu", &matmul_cpu, "q"_a, "x"_a, "y"_a, "threads"_a);
  m.def("save_layers", [](const std::string& path, const std::map<std::string, QuantizedLinear>& layers,
                          const std::string& source_dtype, nb::dict extra) {
    ArrayArgs args("save_layers");
    std::vector<NamedTensor> tensors;
    for (auto [name, value] : extra) {
      const std::string n = nb::cast<std::string>(name);
      const TensorView v = args.in(value, n);
      expect_host_contiguous(v, "save_layers", n);
      tensors.push_back({n, v});
    }
    nb::gil_scoped_release release;
    lords::save_layers(path, layers, parse_dtype(source_dtype, "source_dtype"), tensors);
  }, "path"_a, "layers"_a, "source_dtype"_a, "extra"_a);
  m.def("pack_codes", [](nb::handle codes, int bits) {
    ArrayArgs args("pack_codes");
    const TensorView v = args.in(codes, "codes");
    expect_dtype(v, "pack_codes", "codes", {DType::U8});
    expect_ndim(v, "pack_codes", "codes", 2);
    expect_host_contiguous(v, "pack_codes", "codes");
    const int64_t rows = v.size(0), cols = v.size(1);
    HILO_CHECK(bits >= 2 && bits <= 4 && cols * bits % 8 == 0, "pack_codes: bits = {} with {} columns", bits, cols);
    const uint8_t* c = v.ptr<const uint8_t>();
    for (int64_t i = 0; i < rows * cols; ++i)
      HILO_CHECK(c[i] < (1 << bits), "pack_codes: codes[{}] = {} does not fit {} bits", i, c[i], bits);
    std::vector<uint8_t> out(static_cast<size_t>(rows * cols * bits / 8));
    for (int64_t r = 0; r < rows; ++r) lords::detail::pack_row(c + r * cols, cols, bits, out.data() + r * cols * bits / 8);
    return numpy_copy(out.data(), DType::U8, {rows, cols * bits / 8});
  }, "codes"_a, "bits"_a);
  m.def("unpack_codes", [](const QuantizedLinear& q) {
    std::vector<uint8_t> out(static_cast<size_t>(q.rows * q.cols));
    for (int64_t r = 0; r < q.rows; ++r)
      lords::detail::unpack_row(q.qweight.data() + r * q.row_bytes(), q.cols, q.codebook.bits, out.data() + r * q.cols);
    return numpy_copy(out.data(), DType::U8, {q.rows, q.cols});
  }, "q"_a);
  m.def("code_thresholds", [](const lords::Codebook& cb) {
    return lords::detail::CodeAssigner(cb).thresholds();
  }, "codebook"_a);
  m.def("load_layers", [](const std::string& path) {
    nb::gil_scoped_release release;
    return lords::load_layers(path);
  }, "path"_a);
  m.def("quantize_checkpoint",
        [](const std::string& model, const std::string& out, const std::string& method, const std::string& codebook,
           int bits, int block, int rank, const std::string& optimizer, int steps, float learning_rate, uint64_t seed,
           int threads, int device, const std::string& include, bool replace, nb::object on_progress) {
          lords::CheckpointQuantOptions o;
          o.config = quant_config(method, codebook, bits, block, rank, optimizer, steps, learning_rate, seed, threads,
                                  device);
          o.include = include;
          o.replace_output = replace;
          o.on_progress = progress_fn(on_progress);
          lords::CheckpointQuantResult r;
          {
            nb::gil_scoped_release release;
            r = lords::quantize_checkpoint(model, out, o);
          }
          return checkpoint_result(r);
        },
        "model"_a, "out"_a, "method"_a, "codebook"_a, "bits"_a, "block"_a, "rank"_a, "optimizer"_a, "steps"_a,
        "learning_rate"_a, "seed"_a, "threads"_a, "device"_a, "include"_a, "replace"_a, "on_progress"_a.none());
  m.def("dequantize_checkpoint", [](const std::string& quantized, const std::string& out, bool replace,
                                    nb::object on_progress) {
    const auto fn = progress_fn(on_progress);
    nb::gil_scoped_release release;
    lords::dequantize_checkpoint(quantized, out, replace, fn);
  }, "quantized"_a, "out"_a, "replace"_a, "on_progress"_a.none());
  m.def("inspect_checkpoint", &inspect, "path"_a);

#ifdef HILO_WITH_CUDA
  nb::class_<lords::cuda::DeviceLinear>(m, "DeviceLinear")
      .def("__init__", [](lords::cuda::DeviceLinear* self, const QuantizedLinear& q, int device) {
        nb::gil_scoped_release release;
        new (self) lords::cuda::DeviceLinear(q, device);
      }, "q"_a, "device"_a)
      .def_prop_ro("rows", &lords::cuda::DeviceLinear::rows)
      .def_prop_ro("cols", &lords::cuda::DeviceLinear::cols)
      .def_prop_ro("device", &lords::cuda::DeviceLinear::device);
  m.def("matmul_cuda", [](const lords::cuda::DeviceLinear& w, nb::handle x, nb::handle y, uintptr_t stream) {
    ArrayArgs args("matmul");
    const TensorView xv = args.in(x, "x"), yv = args.out(y, "y");
    nb::gil_scoped_release release;
    lords::cuda::matmul(w, xv, yv, stream_ptr(stream));
  }, "w"_a, "x"_a, "y"_a, "stream"_a);
#endif
}

}  // namespace hilo::python
