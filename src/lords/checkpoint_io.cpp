#include "checkpoint_io.hpp"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "../core/atomic_file.hpp"
#include "../core/check.hpp"

namespace hilo::lords::detail {
namespace fs = std::filesystem;

bool is_sharded(const Checkpoint& checkpoint) {
  return fs::is_directory(checkpoint.path()) && fs::exists(fs::path(checkpoint.path()) / "model.safetensors.index.json");
}

std::vector<std::string> output_shard_names(const Checkpoint& checkpoint) {
  std::vector<std::string> names;
  for (const auto& shard : checkpoint.shards())
    names.push_back(is_sharded(checkpoint) ? fs::path(shard.path()).filename().string() : "model.safetensors");
  return names;
}

void copy_side_files(const std::string& model, const std::string& out_dir) {
  if (!fs::is_directory(model)) return;
  for (const auto& entry : fs::directory_iterator(model)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.ends_with(".safetensors") || name == "model.safetensors.index.json" ||
        name.starts_with("."))
      continue;
    std::error_code ec;
    fs::copy_file(entry.path(), fs::path(out_dir) / name, ec);
    HILO_CHECK(!ec, "cannot copy '{}' to the output: {}", entry.path().string(), ec.message());
  }
}

void write_index(const std::string& out_dir, const std::map<std::string, std::string>& weight_map,
                 std::size_t total_size) {
  const nlohmann::json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  AtomicFile file((fs::path(out_dir) / "model.safetensors.index.json").string());
  file.write(text.data(), text.size());
  file.commit();
}

Metadata plain_metadata(const Metadata& metadata) {
  Metadata out;
  for (const auto& [k, v] : metadata)
    if (k.rfind("hilo", 0) != 0) out[k] = v;
  return out;
}

TensorView aligned_view(const TensorEntry& entry, std::vector<std::byte>& storage) {
  const std::size_t align = dtype_size(entry.dtype);
  if (reinterpret_cast<std::uintptr_t>(entry.data) % align == 0) return entry.view();
  storage.resize(entry.nbytes);
  if (entry.nbytes) std::memcpy(storage.data(), entry.data, entry.nbytes);
  return TensorView(static_cast<const void*>(storage.data()), entry.dtype, entry.shape);
}

}  // namespace hilo::lords::detail
