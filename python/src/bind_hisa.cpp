// HISA and the flat indexer: prefill, paged decode, pooled keys, top-k; CPU or CUDA by where the inputs live.
#include <nanobind/stl/string.h>

#include "arrays.hpp"
#include "bind_common.hpp"
#include "hilo/hisa.hpp"
#include "hilo/hisa_data.hpp"
#include "hilo/topk.hpp"
#ifdef HILO_WITH_CUDA
#include "hilo/hisa_cuda.hpp"
#endif

namespace hilo::python {
namespace {

using namespace nb::literals;

hisa::IndexerOptions indexer_options(int topk, bool sorted, int threads, bool check_finite) {
  hisa::IndexerOptions o;
  o.topk = topk;
  o.sorted = sorted;
  o.threads = threads;
  o.check_finite = check_finite;
  return o;
}

hisa::HisaOptions hisa_options(int topk, bool sorted, int threads, bool check_finite, int block, int blocks_kept,
                               const std::string& pooled) {
  hisa::HisaOptions o;
  static_cast<hisa::IndexerOptions&>(o) = indexer_options(topk, sorted, threads, check_finite);
  o.block = block;
  o.blocks_kept = blocks_kept;
  o.pooled = hisa::parse_pooled_format(pooled);
  return o;
}

nb::dict stats_dict(const hisa::HisaStats& s) {
  nb::dict d;
  d["pool_ms"] = s.pool_ms;
  d["block_ms"] = s.block_ms;
  d["token_ms"] = s.token_ms;
  d["mean_blocks_kept"] = s.mean_blocks_kept;
  d["mean_tile_union_blocks"] = s.mean_tile_union_blocks;
  d["mean_tile_queries"] = s.mean_tile_queries;
  d["mean_blocks_scored"] = s.mean_blocks_scored;
  d["mean_candidates"] = s.mean_candidates;
  return d;
}

struct Prefill {
  ArrayArgs args;
  hisa::PrefillInputs in;
  TensorView idx;
  Prefill(const char* where, nb::handle q, nb::handle w, nb::handle k, nb::handle k_scale, nb::handle ks,
          nb::handle ke, nb::handle out)
      : args(where) {
    in = {args.in(q, "q"), args.in(w, "w"), args.in(k, "k"), args.in(k_scale, "k_scale"), args.in(ks, "ks"),
          args.in(ke, "ke")};
    idx = args.out(out, "idx");
  }
};

struct Decode {
  ArrayArgs args;
  hisa::DecodeInputs in;
  hisa::DecodeOutputs out;
  Decode(const char* where, nb::handle q, nb::handle w, nb::handle kv_cache, nb::handle block_table,
         nb::handle context_lens, nb::handle positions, nb::handle slots)
      : args(where) {
    in = {args.in(q, "q"), args.in(w, "w"), args.in(kv_cache, "kv_cache"), args.in(block_table, "block_table"),
          args.in(context_lens, "context_lens")};
    out = {args.out(positions, "positions"), args.out(slots, "slots")};
  }
};

void flat_prefill(nb::handle q, nb::handle w, nb::handle k, nb::handle k_scale, nb::handle ks, nb::handle ke,
                  nb::handle idx, int topk, bool sorted, int threads, bool check_finite, uintptr_t stream) {
  Prefill p("flat_prefill", q, w, k, k_scale, ks, ke, idx);
  const auto opt = indexer_options(topk, sorted, threads, check_finite);
  nb::gil_scoped_release release;
  if (on_cuda(p.in.q, "flat_prefill")) {
#ifdef HILO_WITH_CUDA
    hisa::cuda::flat_prefill(p.in, opt, p.idx, stream_ptr(stream));
#endif
  } else {
    hisa::flat_prefill(p.in, opt, p.idx);
  }
}

// Stage statistics only when asked: on CUDA they wait for the stream, which a serving call (or a CUDA graph
// capture) must not do.
nb::object hisa_prefill(nb::handle q, nb::handle w, nb::handle k, nb::handle k_scale, nb::handle ks, nb::handle ke,
                        nb::handle idx, int topk, bool sorted, int threads, bool check_finite, int block,
                        int blocks_kept, const std::string& pooled, uintptr_t stream, bool with_stats) {
  Prefill p("hisa_prefill", q, w, k, k_scale, ks, ke, idx);
  const auto opt = hisa_options(topk, sorted, threads, check_finite, block, blocks_kept, pooled);
  hisa::HisaStats stats;
  {
    nb::gil_scoped_release release;
    if (on_cuda(p.in.q, "hisa_prefill")) {
#ifdef HILO_WITH_CUDA
      hisa::cuda::hisa_prefill(p.in, opt, p.idx, stream_ptr(stream), with_stats ? &stats : nullptr);
#endif
    } else {
      hisa::hisa_prefill(p.in, opt, p.idx, with_stats ? &stats : nullptr);
    }
  }
  return with_stats ? nb::object(stats_dict(stats)) : nb::none();
}

void flat_decode(nb::handle q, nb::handle w, nb::handle kv_cache, nb::handle block_table, nb::handle context_lens,
                 nb::handle positions, nb::handle slots, int topk, bool sorted, int threads, bool check_finite,
                 uintptr_t stream) {
  Decode d("flat_decode", q, w, kv_cache, block_table, context_lens, positions, slots);
  const auto opt = indexer_options(topk, sorted, threads, check_finite);
  nb::gil_scoped_release release;
  if (on_cuda(d.in.q, "flat_decode")) {
#ifdef HILO_WITH_CUDA
    hisa::cuda::flat_decode(d.in, opt, d.out, stream_ptr(stream));
#endif
  } else {
    hisa::flat_decode(d.in, opt, d.out);
  }
}

nb::dict hisa_decode_cpu(nb::handle q, nb::handle w, nb::handle kv_cache, nb::handle block_table,
                         nb::handle context_lens, hisa::PooledKeyCache& cache, nb::handle positions, nb::handle slots,
                         int topk, bool sorted, int threads, bool check_finite, int blocks_kept) {
  Decode d("hisa_decode", q, w, kv_cache, block_table, context_lens, positions, slots);
  if (d.in.q.device().kind != DeviceKind::CPU)
    throw Error("hisa_decode: q is on " + to_string(d.in.q.device()) + " but the pooled-key cache is on the CPU");
  const auto opt = hisa_options(topk, sorted, threads, check_finite, cache.block(), blocks_kept,
                                hisa::to_string(cache.format()));
  hisa::HisaStats stats;
  {
    nb::gil_scoped_release release;
    hisa::hisa_decode(d.in, cache, opt, d.out, &stats);
  }
  return stats_dict(stats);
}

void topk_rows(nb::handle scores, int k, nb::handle out, nb::handle starts, nb::handle ends, bool sorted, int threads,
               uintptr_t stream) {
  ArrayArgs args("topk");
  const TensorView s = args.in(scores, "scores"), o = args.out(out, "out");
  const TensorView st = args.in(starts, "starts"), en = args.in(ends, "ends");
  nb::gil_scoped_release release;
  if (on_cuda(s, "topk")) {
#ifdef HILO_WITH_CUDA
    if (!st.empty() || !en.empty()) throw Error("topk: starts/ends (the ragged form) are CPU-only for now");
    hisa::cuda::topk_rows(s, k, o, sorted, stream_ptr(stream));
#endif
  } else {
    TopKOptions opt;
    opt.sorted = sorted;
    opt.threads = threads;
    hilo::topk_rows(s, k, o, st, en, opt);
  }
}

nb::tuple pool_keys_cpu(nb::handle k, nb::handle k_scale, int block, const std::string& format) {
  ArrayArgs args("pool_keys");
  const TensorView kv = args.in(k, "k"), sv = args.in(k_scale, "k_scale");
  hisa::PooledKeys pooled;
  {
    nb::gil_scoped_release release;
    pooled = hisa::pool_keys(kv, sv, block, hisa::parse_pooled_format(format));
  }
  return nb::make_tuple(numpy_copy(pooled.codes.view().data(), pooled.codes.dtype(), pooled.codes.shape()),
                        numpy_copy(pooled.scale.view().data(), pooled.scale.dtype(), pooled.scale.shape()));
}

nb::dict tensors_dict(const std::vector<std::pair<const char*, const Tensor*>>& items) {
  nb::dict d;
  for (const auto& [name, t] : items) d[name] = numpy_copy(t->view().data(), t->dtype(), t->shape());
  return d;
}

nb::list needles_list(const std::vector<hisa::Needle>& needles) {
  nb::list l;
  for (const auto& n : needles) l.append(nb::make_tuple(n.row, n.position));
  return l;
}

hisa::SynthConfig synth_config(int64_t context, int64_t queries, int heads, int dim, const std::string& dtype,
                               uint64_t seed, int needles) {
  hisa::SynthConfig c;
  c.context = context;
  c.queries = queries;
  c.heads = heads;
  c.dim = dim;
  c.dtype = parse_dtype(dtype, "dtype");
  c.seed = seed;
  c.needles = needles;
  return c;
}

}  // namespace

void bind_hisa(nb::module_& m) {
  m.def("flat_prefill", &flat_prefill, "q"_a, "w"_a, "k"_a, "k_scale"_a, "ks"_a, "ke"_a, "idx"_a, "topk"_a,
        "sorted"_a, "threads"_a, "check_finite"_a, "stream"_a);
  m.def("hisa_prefill", &hisa_prefill, "q"_a, "w"_a, "k"_a, "k_scale"_a, "ks"_a, "ke"_a, "idx"_a, "topk"_a,
        "sorted"_a, "threads"_a, "check_finite"_a, "block"_a, "blocks_kept"_a, "pooled"_a, "stream"_a,
        "with_stats"_a);
  m.def("flat_decode", &flat_decode, "q"_a, "w"_a, "kv_cache"_a, "block_table"_a, "context_lens"_a,
        "positions"_a.none(), "slots"_a.none(), "topk"_a, "sorted"_a, "threads"_a, "check_finite"_a, "stream"_a);
  m.def("hisa_decode_cpu", &hisa_decode_cpu, "q"_a, "w"_a, "kv_cache"_a, "block_table"_a, "context_lens"_a,
        "cache"_a, "positions"_a.none(), "slots"_a.none(), "topk"_a, "sorted"_a, "threads"_a, "check_finite"_a,
        "blocks_kept"_a);
  m.def("topk", &topk_rows, "scores"_a, "k"_a, "out"_a, "starts"_a.none(), "ends"_a.none(), "sorted"_a, "threads"_a,
        "stream"_a);
  m.def("pool_keys_cpu", &pool_keys_cpu, "k"_a, "k_scale"_a, "block"_a, "format"_a);
  m.def("cpu_kernel", &hisa::cpu_kernel);

  nb::class_<hisa::PooledKeyCache>(m, "PooledKeyCacheCpu")
      .def("__init__",
           [](hisa::PooledKeyCache* self, int head_dim, int block, const std::string& format) {
             new (self) hisa::PooledKeyCache(head_dim, block, hisa::parse_pooled_format(format));
           },
           "head_dim"_a, "block"_a, "format"_a)
      .def("reset", &hisa::PooledKeyCache::reset, "request"_a)
      .def("length", &hisa::PooledKeyCache::length, "request"_a)
      .def("num_blocks", &hisa::PooledKeyCache::num_blocks, "request"_a)
      .def("codes", [](const hisa::PooledKeyCache& c, int r) {
        const TensorView v = c.codes(r);
        return numpy_copy(v.data(), v.dtype(), v.shape());
      }, "request"_a)
      .def("scales", [](const hisa::PooledKeyCache& c, int r) {
        const TensorView v = c.scales(r);
        return numpy_copy(v.data(), v.dtype(), v.shape());
      }, "request"_a)
      .def_prop_ro("block", &hisa::PooledKeyCache::block)
      .def_prop_ro("head_dim", &hisa::PooledKeyCache::head_dim)
      .def_prop_ro("format", [](const hisa::PooledKeyCache& c) { return hisa::to_string(c.format()); });

  m.def("synthetic_prefill",
        [](int64_t context, int64_t queries, int heads, int dim, const std::string& dtype, uint64_t seed, int needles) {
          hisa::PrefillProblem p;
          {
            nb::gil_scoped_release release;
            p = hisa::make_prefill_problem(synth_config(context, queries, heads, dim, dtype, seed, needles));
          }
          nb::dict d = tensors_dict({{"q", &p.q}, {"w", &p.w}, {"k", &p.k}, {"k_scale", &p.k_scale}, {"ks", &p.ks},
                                     {"ke", &p.ke}});
          d["needles"] = needles_list(p.needles);
          return d;
        },
        "context"_a, "queries"_a, "heads"_a, "dim"_a, "dtype"_a, "seed"_a, "needles"_a);
  m.def("synthetic_decode",
        [](int64_t context, int batch, int next_n, int heads, int dim, uint64_t seed, int needles) {
          hisa::DecodeProblem p;
          {
            nb::gil_scoped_release release;
            p = hisa::make_decode_problem(synth_config(context, 0, heads, dim, "F8_E4M3", seed, needles), batch, next_n);
          }
          nb::dict d = tensors_dict({{"q", &p.q}, {"w", &p.w}, {"kv_cache", &p.kv_cache},
                                     {"block_table", &p.block_table}, {"context_lens", &p.context_lens}});
          d["needles"] = needles_list(p.needles);
          return d;
        },
        "context"_a, "batch"_a, "next_n"_a, "heads"_a, "dim"_a, "seed"_a, "needles"_a);

#ifdef HILO_WITH_CUDA
  nb::class_<hisa::cuda::PooledKeyCache>(m, "PooledKeyCacheCuda")
      .def(nb::init<int, int, int, int, int>(), "device"_a, "max_batch"_a, "max_blocks"_a, "block"_a, "head_dim"_a)
      .def("reset", [](hisa::cuda::PooledKeyCache& c, uintptr_t stream) { c.reset(stream_ptr(stream)); }, "stream"_a)
      .def_prop_ro("block", &hisa::cuda::PooledKeyCache::block)
      .def_prop_ro("max_batch", &hisa::cuda::PooledKeyCache::max_batch)
      .def_prop_ro("max_blocks", &hisa::cuda::PooledKeyCache::max_blocks);
  m.def("hisa_decode_cuda",
        [](nb::handle q, nb::handle w, nb::handle kv_cache, nb::handle block_table, nb::handle context_lens,
           hisa::cuda::PooledKeyCache& cache, nb::handle positions, nb::handle slots, int topk, bool sorted,
           bool check_finite, int blocks_kept, uintptr_t stream, bool with_stats) -> nb::object {
          Decode d("hisa_decode", q, w, kv_cache, block_table, context_lens, positions, slots);
          const auto opt = hisa_options(topk, sorted, 0, check_finite, cache.block(), blocks_kept, "fp8");
          hisa::HisaStats stats;
          {
            // Stage timings wait for the stream: only when asked, so that a serving call never synchronises.
            nb::gil_scoped_release release;
            hisa::cuda::hisa_decode(d.in, cache, opt, d.out, stream_ptr(stream), with_stats ? &stats : nullptr);
          }
          return with_stats ? nb::object(stats_dict(stats)) : nb::none();
        },
        "q"_a, "w"_a, "kv_cache"_a, "block_table"_a, "context_lens"_a, "cache"_a, "positions"_a.none(),
        "slots"_a.none(), "topk"_a, "sorted"_a, "check_finite"_a, "blocks_kept"_a, "stream"_a, "with_stats"_a);
  m.def("pool_keys_cuda",
        [](nb::handle k, nb::handle k_scale, int block, nb::handle codes, nb::handle scale, uintptr_t stream) {
          ArrayArgs args("pool_keys");
          const TensorView kv = args.in(k, "k"), sv = args.in(k_scale, "k_scale");
          const TensorView cv = args.out(codes, "codes"), scv = args.out(scale, "scale");
          nb::gil_scoped_release release;
          hisa::cuda::pool_keys(kv, sv, block, cv, scv, stream_ptr(stream));
        },
        "k"_a, "k_scale"_a, "block"_a, "codes"_a, "scale"_a, "stream"_a);
#endif
}

}  // namespace hilo::python
