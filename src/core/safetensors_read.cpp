// safetensors reader: mmap the file, then validate every part of the header before any tensor is exposed.
#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "check.hpp"
#include "hilo/safetensors.hpp"
#include "mapped_file.hpp"

namespace hilo {
namespace {

using nlohmann::json;
constexpr std::size_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

// Parses the header JSON, refusing duplicate names at the top level (the JSON library would keep the last).
json parse_header(const std::string& path, const char* begin, const char* end) {
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      auto name = parsed.get<std::string>();
      if (!seen.insert(name).second && duplicate.empty()) duplicate = name;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, end, on_event);
  } catch (const json::exception& e) {
    fail("safetensors '{}': the header is not valid JSON ({})", path, e.what());
  }
  HILO_CHECK(duplicate.empty(), "safetensors '{}': tensor name '{}' appears more than once", path, duplicate);
  HILO_CHECK(header.is_object(), "safetensors '{}': the header is a JSON {}, expected an object", path,
             header.type_name());
  return header;
}

uint64_t as_unsigned(const json& v, const std::string& path, const std::string& what) {
  HILO_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
             "safetensors '{}': {} must be a non-negative integer, got {}", path, what, v.dump());
  return v.get<uint64_t>();
}

TensorEntry parse_entry(const std::string& path, const std::string& name, const json& spec, std::size_t data_size) {
  HILO_CHECK(spec.is_object(), "safetensors '{}': entry '{}' is a JSON {}, expected an object", path, name,
             spec.type_name());
  for (const auto& [key, value] : spec.items())
    HILO_CHECK(key == "dtype" || key == "shape" || key == "data_offsets",
               "safetensors '{}': tensor '{}' has an unknown field '{}'", path, name, key);
  HILO_CHECK(spec.contains("dtype") && spec["dtype"].is_string(),
             "safetensors '{}': tensor '{}' has no string field 'dtype'", path, name);
  HILO_CHECK(spec.contains("shape") && spec["shape"].is_array(),
             "safetensors '{}': tensor '{}' has no array field 'shape'", path, name);
  HILO_CHECK(spec.contains("data_offsets") && spec["data_offsets"].is_array() && spec["data_offsets"].size() == 2,
             "safetensors '{}': tensor '{}' needs 'data_offsets' as [begin, end]", path, name);

  TensorEntry e;
  e.name = name;
  e.dtype = parse_dtype(spec["dtype"].get<std::string>(), fmt::format("safetensors '{}': tensor '{}'", path, name));
  uint64_t numel = 1;
  for (const auto& d : spec["shape"]) {
    const uint64_t n = as_unsigned(d, path, fmt::format("a dimension of tensor '{}'", name));
    HILO_CHECK(n <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                   (n == 0 || numel <= std::numeric_limits<uint64_t>::max() / n),
               "safetensors '{}': the shape of tensor '{}' overflows", path, name);
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  const uint64_t begin = as_unsigned(spec["data_offsets"][0], path, fmt::format("the begin offset of '{}'", name));
  const uint64_t end = as_unsigned(spec["data_offsets"][1], path, fmt::format("the end offset of '{}'", name));
  HILO_CHECK(begin <= end, "safetensors '{}': tensor '{}' has data_offsets [{}, {}] with begin after end", path, name,
             begin, end);
  HILO_CHECK(end <= data_size,
             "safetensors '{}': tensor '{}' ends at byte {} of the data section, which has only {} bytes "
             "(truncated file?)",
             path, name, end, data_size);
  const uint64_t elem = dtype_size(e.dtype);
  HILO_CHECK(numel <= std::numeric_limits<uint64_t>::max() / elem && numel * elem == end - begin,
             "safetensors '{}': tensor '{}' of dtype {} and shape {} needs {} bytes but data_offsets [{}, {}] hold {}",
             path, name, dtype_name(e.dtype), shape_string(e.shape), numel * elem, begin, end, end - begin);
  e.offset = begin;
  e.nbytes = end - begin;
  return e;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = std::make_shared<MappedFile>(path);
  const std::size_t size = f.file_->size();
  HILO_CHECK(size >= 8, "safetensors '{}': file has {} bytes, too small for the 8-byte header length", path, size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(f.file_->data()[i]);
  HILO_CHECK(header_len <= size - 8, "safetensors '{}': header length {} runs past the end of the {}-byte file", path,
             header_len, size);
  HILO_CHECK(header_len <= kMaxHeaderBytes, "safetensors '{}': header length {} exceeds the {}-byte limit", path,
             header_len, kMaxHeaderBytes);
  HILO_CHECK(header_len >= 2, "safetensors '{}': header length {} cannot hold a JSON object", path, header_len);
  const char* hbegin = reinterpret_cast<const char*>(f.file_->data() + 8);
  const json header = parse_header(path, hbegin, hbegin + header_len);

  const std::byte* data = f.file_->data() + 8 + header_len;
  const std::size_t data_size = size - 8 - header_len;
  for (const auto& [name, spec] : header.items()) {
    if (name == "__metadata__") {
      HILO_CHECK(spec.is_object(), "safetensors '{}': __metadata__ must be an object of strings", path);
      for (const auto& [k, v] : spec.items()) {
        HILO_CHECK(v.is_string(), "safetensors '{}': __metadata__ value of '{}' is not a string", path, k);
        f.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    TensorEntry e = parse_entry(path, name, spec, data_size);
    e.data = data + e.offset;
    f.tensors_.push_back(std::move(e));
  }
  std::sort(f.tensors_.begin(), f.tensors_.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  for (std::size_t i = 1; i < f.tensors_.size(); ++i) {
    const TensorEntry& prev = f.tensors_[i - 1];
    const TensorEntry& cur = f.tensors_[i];
    HILO_CHECK(cur.offset >= prev.offset + prev.nbytes,
               "safetensors '{}': tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", path, prev.name, prev.offset,
               prev.offset + prev.nbytes, cur.name, cur.offset, cur.offset + cur.nbytes);
  }
  for (std::size_t i = 0; i < f.tensors_.size(); ++i) f.by_name_[f.tensors_[i].name] = i;
  return f;
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorEntry& SafetensorsFile::at(const std::string& name) const {
  const TensorEntry* e = find(name);
  HILO_CHECK(e != nullptr, "safetensors '{}': no tensor named '{}'", path_, name);
  return *e;
}

}  // namespace hilo
