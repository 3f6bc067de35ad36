// Shared helpers for the C++ tests: random tensors, poisoned outputs, temporary directories.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "hilo/dtype.hpp"
#include "hilo/error.hpp"
#include "hilo/tensor.hpp"

namespace hilo::test {

inline std::mt19937_64& rng() {
  static std::mt19937_64 gen(std::random_device{}());
  return gen;
}

// Skips a test that only checks numbers on long runs (quality, pinned values, thread-count determinism) where
// HILO_SKIP_HEAVY is set: the sanitizer build (scripts/test.sh --sanitize) runs several times slower, and its point,
// memory and UB errors, is covered on the same code paths by the smaller tests. The plain build runs them.
#define SKIP_IF_HEAVY_SKIPPED()                                                                  \
  do {                                                                                           \
    if (std::getenv("HILO_SKIP_HEAVY")) GTEST_SKIP() << "long numeric check (HILO_SKIP_HEAVY)"; \
  } while (0)

// A fresh seed per test, printed so a failure can be replayed with HILO_TEST_SEED.
inline uint64_t fresh_seed() {
  if (const char* s = std::getenv("HILO_TEST_SEED")) return std::stoull(s);
  const uint64_t seed = rng()();
  std::cout << "[ seed     ] HILO_TEST_SEED=" << seed << std::endl;
  return seed;
}

// Random values of a floating dtype, roughly N(0, sigma) before encoding; fp8 never produces NaN codes.
inline Tensor random_tensor(DType dtype, Shape shape, std::mt19937_64& gen, float sigma = 1.0f) {
  Tensor t(dtype, std::move(shape));
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(t.numel());
  for (auto& x : v) x = dist(gen);
  convert(v.data(), DType::F32, t.view().data(), dtype, v.size());
  return t;
}

inline Tensor filled_i32(Shape shape, int32_t value) {
  Tensor t(DType::I32, std::move(shape));
  std::fill(t.ptr<int32_t>(), t.ptr<int32_t>() + t.numel(), value);
  return t;
}

// Fills an output with a value no valid result holds, so unwritten entries show.
inline void poison(const Tensor& t) { std::memset(t.view().data(), 0x5A, t.nbytes()); }

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("hilo-test-" + std::to_string(rng()()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

#define EXPECT_HILO_ERROR(stmt, substring)                                                   \
  do {                                                                                       \
    try {                                                                                    \
      stmt;                                                                                  \
      ADD_FAILURE() << "expected hilo::Error containing '" << (substring) << "'";            \
    } catch (const hilo::Error& e) {                                                         \
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos) << e.what();      \
    }                                                                                        \
  } while (0)

}  // namespace hilo::test
