// hilo::AtomicFile and hilo::AtomicDirectory: an output is the old one or the complete new one, never a partial file,
// and a path that cannot be written is refused by name (the CLI's and the benchmarks' outputs go through them).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/atomic_file.hpp"
#include "test_util.hpp"

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t entries(const std::filesystem::path& dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

TEST(AtomicFile, CommitReplacesTheTargetAndAbandonLeavesIt) {
  hilo::test::TempDir dir;
  const std::string target = dir.file("out.json");
  {
    hilo::AtomicFile f(target);
    f.write("new", 3);
    f.commit();
  }
  EXPECT_EQ(read_all(target), "new");
  {
    hilo::AtomicFile f(target);
    f.write("half", 4);  // no commit: as if the writer failed part-way
  }
  EXPECT_EQ(read_all(target), "new");
  EXPECT_EQ(entries(dir.path()), 1u);  // no temporary file left beside it
}

TEST(AtomicFile, UnwritablePathsAreRefusedByName) {
  hilo::test::TempDir dir;
  const std::string missing = dir.file("no-such-dir/out.json");
  EXPECT_HILO_ERROR(hilo::AtomicFile{missing}, missing);
  EXPECT_HILO_ERROR(hilo::AtomicFile{""}, "output path is empty");
  hilo::AtomicFile f(dir.file("x"));
  f.commit();
  EXPECT_HILO_ERROR(f.write("x", 1), "after it was committed");
}

TEST(AtomicDirectory, AppearsOnlyWhenCommittedAndRefusesAnExistingOneUnlessReplacing) {
  hilo::test::TempDir dir;
  const std::string target = dir.file("model");
  {
    hilo::AtomicDirectory d(target, false);
    std::ofstream(std::filesystem::path(d.temp_path()) / "config.json") << "{}";
    EXPECT_FALSE(std::filesystem::exists(target));
  }  // not committed: nothing remains
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_EQ(entries(dir.path()), 0u);
  {
    hilo::AtomicDirectory d(target, false);
    std::ofstream(std::filesystem::path(d.temp_path()) / "a") << "1";
    d.commit();
  }
  EXPECT_EQ(read_all(target + "/a"), "1");
  EXPECT_HILO_ERROR(hilo::AtomicDirectory(target, false), "already exists");
  {
    hilo::AtomicDirectory d(target, true);
    std::ofstream(std::filesystem::path(d.temp_path()) / "b") << "2";
    d.commit();
  }
  EXPECT_FALSE(std::filesystem::exists(target + "/a"));
  EXPECT_EQ(read_all(target + "/b"), "2");
}

}  // namespace
