#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace hilo
