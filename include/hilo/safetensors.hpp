// safetensors files (read through mmap, fully validated; written atomically) and Hugging Face checkpoints
// (a single model.safetensors, or model.safetensors.index.json plus shards) opened as one map of tensors.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hilo/tensor.hpp"

namespace hilo {

class MappedFile;

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::size_t offset = 0;  // byte offset inside the data section
  std::size_t nbytes = 0;
  const std::byte* data = nullptr;  // valid while the file that holds it is open

  // A read-only view of the mapped bytes. The data section is only as aligned as the file makes it: use
  // Tensor::copy_of(view()) where typed, aligned access is needed.
  TensorView view() const { return TensorView(static_cast<const void*>(data), dtype, shape); }
};

using Metadata = std::map<std::string, std::string>;

class SafetensorsFile {
 public:
  // Maps and validates the whole header; throws hilo::Error naming the file and the problem.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return metadata_; }
  const std::vector<TensorEntry>& tensors() const { return tensors_; }  // ordered by offset
  const TensorEntry* find(const std::string& name) const;
  const TensorEntry& at(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  Metadata metadata_;
  std::vector<TensorEntry> tensors_;
  std::map<std::string, std::size_t> by_name_;
};

struct NamedTensor {
  std::string name;
  TensorView view;  // host, contiguous
};

// What a tensor in a file will be, before its bytes exist.
struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::size_t nbytes() const;
};

// Streams a safetensors file whose tensors are known up front: the header is written first, then each tensor's
// bytes in the declared order (one tensor in memory at a time). Written atomically like write_safetensors; an
// unfinished writer (destroyed without commit) leaves nothing behind.
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<TensorSpec> tensors, const Metadata& metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The next tensor's bytes; `name` and the byte count must match the declaration (throws otherwise).
  void write(const std::string& name, const void* data, std::size_t nbytes);
  void commit();  // every declared tensor must have been written
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  std::size_t next() const { return next_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
  std::vector<TensorSpec> tensors_;
  std::size_t next_ = 0;
};

// Drops the pages of a memory-mapped range from this process's resident set (the file stays in the page cache),
// so streaming through a large mapped checkpoint keeps the resident memory bounded. A hint: never fails.
void release_mapped_pages(const void* data, std::size_t nbytes);

// Writes `tensors` (in the given order) and `metadata` to `path`. The header is padded with spaces to a multiple of
// 8 bytes. The file is written to a temporary name beside `path`, synced and renamed, so a reader never sees a
// partial file and an interrupted write leaves the old file (if any) untouched.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const Metadata& metadata = {});

// A Hugging Face model directory (or one .safetensors file) seen as one map of tensors.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);
  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;
  Checkpoint(const Checkpoint&) = delete;  // entries point into the shards it owns
  Checkpoint& operator=(const Checkpoint&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<std::string>& names() const { return names_; }  // sorted
  std::size_t size() const { return names_.size(); }
  const TensorEntry* find(const std::string& name) const;
  const TensorEntry& at(const std::string& name) const;
  const std::vector<SafetensorsFile>& shards() const { return shards_; }

 private:
  Checkpoint() = default;
  std::string path_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, const TensorEntry*> entries_;
  std::vector<std::string> names_;
};

}  // namespace hilo
