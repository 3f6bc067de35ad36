// safetensors writers: header padded to 8 bytes, data in the declared order, written atomically.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>

#include "atomic_file.hpp"
#include "check.hpp"
#include "hilo/safetensors.hpp"

namespace hilo {

std::size_t TensorSpec::nbytes() const {
  std::size_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

struct SafetensorsWriter::Impl {
  explicit Impl(const std::string& path) : file(path) {}
  AtomicFile file;
};

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorSpec> tensors,
                                     const Metadata& metadata)
    : path_(path), tensors_(std::move(tensors)) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  std::size_t offset = 0;
  for (const auto& t : tensors_) {
    HILO_CHECK(t.name != "__metadata__", "write_safetensors '{}': '__metadata__' is reserved, not a tensor name",
               path);
    HILO_CHECK(names.insert(t.name).second, "write_safetensors '{}': tensor name '{}' given twice", path, t.name);
    for (int64_t d : t.shape)
      HILO_CHECK(d >= 0, "write_safetensors '{}': tensor '{}' has a negative dimension", path, t.name);
    const std::size_t bytes = t.nbytes();
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(header_len >> (8 * i));
  impl_ = std::make_unique<Impl>(path);
  impl_->file.write(len_bytes, 8);
  impl_->file.write(text.data(), text.size());
}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::write(const std::string& name, const void* data, std::size_t nbytes) {
  HILO_CHECK(next_ < tensors_.size(), "write_safetensors '{}': tensor '{}' was not declared", path_, name);
  const TensorSpec& t = tensors_[next_];
  HILO_CHECK(t.name == name, "write_safetensors '{}': expected tensor '{}' next, got '{}'", path_, t.name, name);
  HILO_CHECK(t.nbytes() == nbytes, "write_safetensors '{}': tensor '{}' holds {} bytes, {} declared", path_, name,
             nbytes, t.nbytes());
  if (nbytes > 0) impl_->file.write(data, nbytes);
  ++next_;
}

void SafetensorsWriter::commit() {
  HILO_CHECK(next_ == tensors_.size(), "write_safetensors '{}': {} of {} tensors written", path_, next_,
             tensors_.size());
  impl_->file.commit();
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) {
    expect_host_contiguous(t.view, fmt::format("write_safetensors '{}'", path), fmt::format("tensor '{}'", t.name));
    specs.push_back({t.name, t.view.dtype(), t.view.shape()});
  }
  SafetensorsWriter out(path, std::move(specs), metadata);
  for (const auto& t : tensors) out.write(t.name, t.view.data(), t.view.nbytes());
  out.commit();
}

void release_mapped_pages(const void* data, std::size_t nbytes) {
  static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  const std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(data) + nbytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace hilo
