// safetensors writer: header padded to 8 bytes, data in the given order, written atomically.
#include <nlohmann/json.hpp>
#include <set>

#include "atomic_file.hpp"
#include "check.hpp"
#include "hilo/safetensors.hpp"

namespace hilo {

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    HILO_CHECK(t.name != "__metadata__", "write_safetensors '{}': '__metadata__' is reserved, not a tensor name",
               path);
    HILO_CHECK(names.insert(t.name).second, "write_safetensors '{}': tensor name '{}' given twice", path, t.name);
    expect_host_contiguous(t.view, fmt::format("write_safetensors '{}'", path), fmt::format("tensor '{}'", t.name));
    const std::size_t bytes = t.view.nbytes();
    header[t.name] = {{"dtype", std::string(dtype_name(t.view.dtype()))},
                      {"shape", t.view.shape()},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(header_len >> (8 * i));

  AtomicFile out(path);
  out.write(len_bytes, 8);
  out.write(text.data(), text.size());
  for (const auto& t : tensors)
    if (t.view.nbytes() > 0) out.write(t.view.data(), t.view.nbytes());
  out.commit();
}

}  // namespace hilo
