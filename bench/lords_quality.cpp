// Quality of block-wise vs LoRDS (Adam and ALS refinement) at equal bits per weight: relative Frobenius error and
// time, on the fixture checkpoint's projections and on synthetic Llama-3-8B-shaped matrices. --json writes every
// run (with LoRDS' error-after-each-step trace) for docs/results/lords-quality.md and its plot.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <regex>

#include "cpu_peak.hpp"
#include "hilo/lords.hpp"
#include "hilo/lords_data.hpp"
#include "hilo/safetensors.hpp"
#include "hilo/threads.hpp"
#include "json_out.hpp"

namespace {
using namespace hilo;
using namespace hilo::lords;

struct Matrix {
  std::string source, name;
  Tensor weight;
};

struct Options {
  std::vector<int> bits{2, 3, 4}, blocks{64, 128};
  std::vector<std::string> codebooks{"nf"};
  int adam_steps = 500, als_steps = 20;
  int64_t als_max_rank_cost = 0;  // skip ALS where rows * cols * rank^2 exceeds this (0: never skip)
  int threads = 0;
  std::vector<std::string> methods{"blockwise", "lords-adam", "lords-als"};
};

nlohmann::json run(const Matrix& m, const Options& o, nlohmann::json& out) {
  const int64_t rows = m.weight.shape()[0], cols = m.weight.shape()[1];
  for (const auto& cbname : o.codebooks)
    for (int bits : o.bits)
      for (int block : o.blocks) {
        QuantConfig c;
        c.codebook = parse_codebook(cbname);
        c.bits = bits, c.block = block, c.threads = o.threads;
        struct Variant {
          Method method;
          Optimizer opt;
          int steps;
        };
        auto wanted = [&](const char* m) { return std::find(o.methods.begin(), o.methods.end(), m) != o.methods.end(); };
        std::vector<Variant> variants;
        if (wanted("blockwise")) variants.push_back({Method::Blockwise, Optimizer::Adam, 0});
        if (wanted("lords-adam")) variants.push_back({Method::Lords, Optimizer::Adam, o.adam_steps});
        const int rank = parity_rank(rows, cols, block);
        const bool als = o.als_max_rank_cost == 0 ||
                         static_cast<double>(rows) * cols * rank * rank <= static_cast<double>(o.als_max_rank_cost);
        if (als && wanted("lords-als")) variants.push_back({Method::Lords, Optimizer::ALS, o.als_steps});
        for (const auto& v : variants) {
          c.method = v.method, c.optimizer = v.opt, c.steps = v.steps;
          QuantReport rep;
          const QuantizedLinear q = quantize(m.weight.view(), c, &rep);
          const std::string method = v.method == Method::Blockwise ? "blockwise" : "lords-" + to_string(v.opt);
          std::printf("%-9s %-42s %6ldx%-6ld %-4s B=%-3d %-11s r=%-3d bpw=%.4f rel=%.5f init=%.5f %7.2fs\n",
                      m.source.c_str(), m.name.c_str(), static_cast<long>(rows), static_cast<long>(cols),
                      q.codebook.name().c_str(), block, method.c_str(), q.rank, q.bits_per_weight(), rep.rel_error,
                      rep.init_rel_error, rep.seconds);
          std::fflush(stdout);
          out.push_back({{"source", m.source}, {"tensor", m.name}, {"rows", rows}, {"cols", cols},
                         {"codebook", q.codebook.name()}, {"bits", bits}, {"block", block}, {"method", method},
                         {"steps", rep.steps}, {"rank", q.rank}, {"bits_per_weight", q.bits_per_weight()},
                         {"rel_error", rep.rel_error}, {"init_rel_error", rep.init_rel_error},
                         {"seconds", rep.seconds}, {"trace", rep.trace}});
        }
      }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Block-wise vs LoRDS quantization error at equal bits per weight"};
  Options o, synth;
  std::string fixture = std::string(HILO_FIXTURE_DIR), json_path, include = R"(_proj\.weight$)";
  std::vector<std::string> shapes{"q_proj:4096x4096", "k_proj:1024x4096", "gate_proj:14336x4096",
                                  "down_proj:4096x14336"};
  synth.adam_steps = 200, synth.als_steps = 10, synth.als_max_rank_cost = int64_t{4096} * 4096 * 32 * 32;
  app.add_option("--fixture", fixture, "Hugging Face checkpoint whose projections to quantize ('' to skip)");
  app.add_option("--include", include, "Fixture tensors to use (regex)");
  app.add_option("--shapes", shapes, "Synthetic matrices NAME:ROWSxCOLS (none: skip)");
  app.add_option("--bits", o.bits)->capture_default_str();
  app.add_option("--blocks", o.blocks)->capture_default_str();
  app.add_option("--codebooks", o.codebooks)->capture_default_str();
  app.add_option("--adam-steps", o.adam_steps, "Fixture: Adam steps")->capture_default_str();
  app.add_option("--als-steps", o.als_steps, "Fixture: ALS steps")->capture_default_str();
  app.add_option("--synth-adam-steps", synth.adam_steps)->capture_default_str();
  app.add_option("--synth-als-steps", synth.als_steps)->capture_default_str();
  app.add_option("--synth-als-max-cost", synth.als_max_rank_cost,
                 "Synthetic: skip ALS where rows*cols*rank^2 exceeds this (its cost per step)")
      ->capture_default_str();
  app.add_option("--threads", o.threads);
  app.add_option("--methods", o.methods, "Subset of blockwise, lords-adam, lords-als")->capture_default_str();
  app.add_option("--json", json_path, "Write every run to this JSON file");
  CLI11_PARSE(app, argc, argv);
  synth.bits = o.bits, synth.blocks = o.blocks, synth.codebooks = o.codebooks, synth.threads = o.threads;
  synth.methods = o.methods;

  nlohmann::json runs = nlohmann::json::array();
  std::printf("%s | %s | %d threads\n", hilo::bench::today().c_str(), hilo::bench::cpu_model().c_str(),
              resolve_threads(o.threads));
  auto save = [&] {
    if (json_path.empty()) return;
    hilo::bench::write_json(json_path, {{"date", hilo::bench::today()},
                                        {"cpu", hilo::bench::cpu_model()},
                                        {"threads", resolve_threads(o.threads)},
                                        {"runs", runs}});
  };
  if (!fixture.empty() && std::filesystem::exists(fixture)) {
    const Checkpoint ck = Checkpoint::open(fixture);
    const std::regex re(include);
    for (const auto& name : ck.names())
      if (std::regex_search(name, re)) {
        run({"fixture", name, Tensor::copy_of(ck.at(name).view())}, o, runs);
        save();
      }
  }
  for (const auto& spec : shapes) {
    const auto colon = spec.find(':'), x = spec.find('x', colon);
    WeightSynthConfig c;
    c.rows = std::stoll(spec.substr(colon + 1, x - colon - 1));
    c.cols = std::stoll(spec.substr(x + 1));
    c.seed = std::hash<std::string>{}(spec) & 0xFFFF;
    Tensor w(DType::F32, {c.rows, c.cols});
    synthetic_weight(c, w.ptr<float>());
    run({"synthetic", spec.substr(0, colon), std::move(w)}, synth, runs);
    save();
  }
  save();
  return 0;
}
