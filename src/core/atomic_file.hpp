// Writes a file under a temporary name in the target's directory and renames it into place on commit(), so the
// target is either the old file or the complete new one. Without commit() the temporary file is removed.
#pragma once

#include <cstddef>
#include <string>

namespace hilo {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates the temporary file; throws hilo::Error on failure
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void commit();  // flush, fsync, rename over the target

 private:
  void discard() noexcept;
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
};

}  // namespace hilo

namespace hilo {

// A directory built under a temporary name beside `path` (".<name>.hilo-tmp-XXXXXX") and renamed into place on
// commit(). Without commit() the temporary directory and everything in it are removed. `path` must not exist
// unless `replace` is set, in which case the old directory is removed after the new one is complete.
class AtomicDirectory {
 public:
  AtomicDirectory(std::string path, bool replace);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  const std::string& temp_path() const { return temp_path_; }  // write the contents here
  void commit();

 private:
  std::string path_, temp_path_;
  bool replace_ = false, committed_ = false;
};

}  // namespace hilo
