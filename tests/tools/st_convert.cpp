// Test helper: st_convert IN OUT [DTYPE]. Copies every tensor of IN to OUT (metadata included), converting the
// floating tensors to DTYPE (F32, BF16, F16, F8_E4M3) when given. Exercises the reader and the writer.
#include <cstdio>
#include <cstring>
#include <vector>

#include "hilo/error.hpp"
#include "hilo/safetensors.hpp"

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: st_convert IN OUT [DTYPE]\n");
    return 2;
  }
  try {
    const auto in = hilo::SafetensorsFile::open(argv[1]);
    std::vector<hilo::Tensor> owned;
    std::vector<hilo::NamedTensor> out;
    owned.reserve(in.tensors().size());
    for (const auto& e : in.tensors()) {
      const bool convert = argc == 4 && hilo::is_floating(e.dtype) && e.dtype != hilo::DType::F64;
      const hilo::DType to = convert ? hilo::parse_dtype(argv[3], "DTYPE") : e.dtype;
      owned.emplace_back(to, e.shape);
      if (convert)
        hilo::convert(e.data, e.dtype, owned.back().view().data(), to, e.view().numel());
      else if (e.nbytes)
        std::memcpy(owned.back().view().data(), e.data, e.nbytes);
      out.push_back({e.name, owned.back()});
    }
    hilo::write_safetensors(argv[2], out, in.metadata());
  } catch (const hilo::Error& e) {
    std::fprintf(stderr, "st_convert: %s\n", e.what());
    return 1;
  }
  return 0;
}
