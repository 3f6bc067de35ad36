// A read-only memory map of a whole file (RAII).
#pragma once

#include <cstddef>
#include <string>

namespace hilo {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws hilo::Error naming the path and errno text
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// The whole file as a string (throws hilo::Error naming the path).
inline std::string read_file(const std::string& path) {
  const MappedFile f(path);
  return f.size() ? std::string(reinterpret_cast<const char*>(f.data()), f.size()) : std::string();
}

}  // namespace hilo
