// A Hugging Face checkpoint: one .safetensors file, a directory with model.safetensors, or a directory with
// model.safetensors.index.json whose weight_map names every tensor's shard. The index and the shards must agree.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "check.hpp"
#include "hilo/safetensors.hpp"

namespace hilo {
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  HILO_CHECK(in.good(), "checkpoint: cannot read '{}'", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint: '{}' is not valid JSON ({})", path.string(), e.what());
  }
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint c;
  c.path_ = path;
  std::error_code ec;
  const fs::path root(path);
  HILO_CHECK(fs::exists(root, ec), "checkpoint: '{}' does not exist", path);

  std::map<std::string, std::string> weight_map;  // tensor -> shard file name (sharded case only)
  if (fs::is_regular_file(root, ec)) {
    c.shards_.push_back(SafetensorsFile::open(path));
  } else if (fs::exists(root / "model.safetensors.index.json")) {
    const fs::path index_path = root / "model.safetensors.index.json";
    const nlohmann::json index = read_json_file(index_path);
    HILO_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
               "checkpoint: '{}' has no object 'weight_map'", index_path.string());
    std::vector<std::string> shard_files;
    for (const auto& [name, file] : index["weight_map"].items()) {
      HILO_CHECK(file.is_string(), "checkpoint: weight_map entry '{}' in '{}' is not a file name", name,
                 index_path.string());
      const std::string f = file.get<std::string>();
      HILO_CHECK(!f.empty() && f.find('/') == std::string::npos && f != "." && f != "..",
                 "checkpoint: weight_map entry '{}' names '{}', which is not a file in the checkpoint directory",
                 name, f);
      weight_map[name] = f;
      if (std::find(shard_files.begin(), shard_files.end(), f) == shard_files.end()) shard_files.push_back(f);
    }
    std::sort(shard_files.begin(), shard_files.end());
    for (const auto& f : shard_files) c.shards_.push_back(SafetensorsFile::open((root / f).string()));
  } else if (fs::exists(root / "model.safetensors")) {
    c.shards_.push_back(SafetensorsFile::open((root / "model.safetensors").string()));
  } else {
    fail("checkpoint: directory '{}' has neither model.safetensors nor model.safetensors.index.json", path);
  }

  for (const auto& shard : c.shards_) {
    const std::string shard_name = fs::path(shard.path()).filename().string();
    for (const auto& e : shard.tensors()) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(e.name);
        HILO_CHECK(it != weight_map.end(), "checkpoint: tensor '{}' in shard '{}' is not listed in the index",
                   e.name, shard_name);
        HILO_CHECK(it->second == shard_name, "checkpoint: tensor '{}' is in shard '{}' but the index names '{}'",
                   e.name, shard_name, it->second);
      }
      HILO_CHECK(c.entries_.emplace(e.name, &e).second, "checkpoint: tensor '{}' appears in more than one shard",
                 e.name);
    }
  }
  for (const auto& [name, file] : weight_map)
    HILO_CHECK(c.entries_.count(name) == 1, "checkpoint: the index lists tensor '{}' in '{}', which does not hold it",
               name, file);
  for (const auto& [name, entry] : c.entries_) c.names_.push_back(name);
  return c;
}

const TensorEntry* Checkpoint::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

const TensorEntry& Checkpoint::at(const std::string& name) const {
  const TensorEntry* e = find(name);
  HILO_CHECK(e != nullptr, "checkpoint '{}': no tensor named '{}'", path_, name);
  return *e;
}

}  // namespace hilo
