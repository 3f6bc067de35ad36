#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <vector>

#include "check.hpp"

namespace hilo {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  HILO_CHECK(!path_.empty(), "output path is empty");
  temp_path_ = path_ + ".tmp-XXXXXX";
  std::vector<char> name(temp_path_.begin(), temp_path_.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  HILO_CHECK(fd_ >= 0, "cannot create a temporary file beside '{}': {}", path_, std::strerror(errno));
  temp_path_ = name.data();
  ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  HILO_CHECK(fd_ >= 0, "write to '{}' after it was committed or discarded", path_);
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      discard();
      fail("cannot write '{}': {}", path_, std::strerror(err));
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  HILO_CHECK(fd_ >= 0, "commit of '{}' after it was committed or discarded", path_);
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    const int err = errno;
    fd_ = -1;
    ::unlink(temp_path_.c_str());
    fail("cannot finish writing '{}': {}", path_, std::strerror(err));
  }
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_path_.c_str());
    fail("cannot rename the finished file into '{}': {}", path_, std::strerror(err));
  }
}

AtomicDirectory::AtomicDirectory(std::string path, bool replace) : path_(std::move(path)), replace_(replace) {
  namespace fs = std::filesystem;
  HILO_CHECK(!path_.empty(), "output directory path is empty");
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  std::error_code ec;
  if (fs::exists(path_, ec)) {
    HILO_CHECK(replace_, "output '{}' already exists (remove it or pass --force)", path_);
    HILO_CHECK(fs::is_directory(path_, ec), "output '{}' exists and is not a directory", path_);
  }
  const fs::path target(path_);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  HILO_CHECK(fs::is_directory(parent, ec), "the parent directory of output '{}' does not exist", path_);
  std::string leaf = target.filename().string();
  leaf.insert(leaf.begin(), '.');
  leaf.append(".hilo-tmp-XXXXXX");
  const std::string templ = (parent / leaf).string();
  std::vector<char> name(templ.begin(), templ.end());
  name.push_back('\0');
  HILO_CHECK(::mkdtemp(name.data()) != nullptr, "cannot create a temporary directory beside '{}': {}", path_,
             std::strerror(errno));
  temp_path_ = name.data();
  ::chmod(temp_path_.c_str(), 0755);
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove_all(temp_path_, ec);
  }
}

void AtomicDirectory::commit() {
  namespace fs = std::filesystem;
  HILO_CHECK(!committed_, "output '{}' was already committed", path_);
  std::error_code ec;
  std::string old;
  if (fs::exists(path_, ec)) {  // replace: move the old directory aside first, remove it once the new one is in
    old = temp_path_ + ".old";
    fs::rename(path_, old, ec);
    HILO_CHECK(!ec, "cannot move the old '{}' aside: {}", path_, ec.message());
  }
  fs::rename(temp_path_, path_, ec);
  if (ec) {
    if (!old.empty()) fs::rename(old, path_);
    fail("cannot rename the finished output into '{}': {}", path_, ec.message());
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace hilo
