#include <fstream>
#include <nlohmann/json.hpp>

#include "hilo/error.hpp"
#include "hilo/safetensors.hpp"
#include "test_util.hpp"

namespace hilo {
namespace {

using test::TempDir;

// Writes a safetensors file byte by byte: 8-byte length, the given header text, then `data_bytes` bytes.
void write_raw(const std::string& path, const std::string& header, std::size_t data_bytes, uint64_t claimed_len = 0) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = claimed_len ? claimed_len : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(len >> (8 * i)));
  out << header;
  out << std::string(data_bytes, '\x01');
}

TEST(Safetensors, RoundTripKeepsEverything) {
  TempDir dir;
  std::mt19937_64 gen(test::fresh_seed());
  Tensor a = test::random_tensor(DType::F32, {3, 5}, gen);
  Tensor b = test::random_tensor(DType::BF16, {7}, gen);
  Tensor c = test::random_tensor(DType::F8_E4M3, {2, 2, 3}, gen);
  Tensor empty(DType::I64, {0, 4});
  const std::string path = dir.file("x.safetensors");
  write_safetensors(path, {{"a", a}, {"b.weight", b}, {"c", c}, {"empty", empty}}, {{"format", "pt"}});
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 4u);
  for (const auto& [name, t] : std::vector<std::pair<std::string, Tensor*>>{{"a", &a}, {"b.weight", &b}, {"c", &c}}) {
    const TensorEntry& e = f.at(name);
    EXPECT_EQ(e.dtype, t->dtype());
    EXPECT_EQ(e.shape, t->shape());
    EXPECT_EQ(std::memcmp(e.data, t->view().data(), t->nbytes()), 0);
  }
  EXPECT_EQ(f.at("empty").shape, (Shape{0, 4}));
  // Header padded to 8 bytes, so the data section is 8-byte aligned.
  std::ifstream in(path, std::ios::binary);
  uint64_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 8);
  EXPECT_EQ(len % 8, 0u);
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_HILO_ERROR(f.at("missing"), "no tensor named 'missing'");
}

TEST(Safetensors, WriterRefusesBadInputAndLeavesNothingBehind) {
  TempDir dir;
  Tensor a(DType::F32, {2});
  const std::string path = dir.file("y.safetensors");
  write_safetensors(path, {{"old", a}});
  EXPECT_HILO_ERROR(write_safetensors(path, {{"a", a}, {"a", a}}), "tensor name 'a' given twice");
  float data[6] = {};
  TensorView strided(data, DType::F32, {2, 2}, {3, 1});
  EXPECT_HILO_ERROR(write_safetensors(path, {{"s", strided}}), "must be contiguous");
  EXPECT_HILO_ERROR(write_safetensors(path, {{"__metadata__", a}}), "reserved");
  EXPECT_HILO_ERROR(write_safetensors(dir.file("no/such/dir/z.safetensors"), {{"a", a}}), "temporary file");
  // The old file is intact and no temporary files remain.
  EXPECT_NE(SafetensorsFile::open(path).find("old"), nullptr);
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

struct Malformed {
  const char* what;
  std::string header;
  std::size_t data_bytes;
  const char* message;
  uint64_t claimed_len = 0;
};

TEST(Safetensors, RefusesEveryKindOfMalformedFile) {
  TempDir dir;
  const std::vector<Malformed> cases = {
      {"header runs past the end", R"({})", 0, "runs past the end", 1000},
      {"not JSON", R"({"a": {"dtype": "F32",)", 0, "not valid JSON"},
      {"not an object", R"([1, 2])", 0, "expected an object"},
      {"unknown dtype", R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4, "unknown dtype 'F99'"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "needs 8 bytes"},
      {"past the data", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, "truncated file"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlap"},
      {"duplicate",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, "appears more than once"},
      {"begin after end", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4, "begin after end"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "non-negative integer"},
      {"fractional dim", R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4, "non-negative integer"},
      {"missing field", R"({"a":{"dtype":"F32","shape":[1]}})", 4, "data_offsets"},
      {"unknown field", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4, "unknown field 'x'"},
      {"metadata not strings", R"({"__metadata__":{"k":1}})", 0, "not a string"},
      {"shape overflow", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})",
       4, "overflows"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string path = dir.file("bad.safetensors");
    write_raw(path, c.header, c.data_bytes, c.claimed_len);
    EXPECT_HILO_ERROR(SafetensorsFile::open(path), c.message);
  }
  {
    std::ofstream(dir.file("tiny.safetensors")) << "abc";
    EXPECT_HILO_ERROR(SafetensorsFile::open(dir.file("tiny.safetensors")), "too small");
  }
  EXPECT_HILO_ERROR(SafetensorsFile::open(dir.file("absent.safetensors")), "cannot open");
  EXPECT_HILO_ERROR(SafetensorsFile::open(dir.path().string()), "not a regular file");
}

TEST(Safetensors, TruncatedCopiesOfAGoodFileAreRefused) {
  TempDir dir;
  std::mt19937_64 gen(test::fresh_seed());
  Tensor a = test::random_tensor(DType::F32, {64}, gen);
  const std::string path = dir.file("good.safetensors");
  write_safetensors(path, {{"a", a}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{20}, bytes.size() - 1}) {
    std::ofstream(dir.file("cut.safetensors"), std::ios::binary) << bytes.substr(0, cut);
    EXPECT_THROW(SafetensorsFile::open(dir.file("cut.safetensors")), Error) << "cut at " << cut;
  }
}

// Builds a two-shard checkpoint and its index in `dir`.
void write_sharded(const TempDir& dir, const nlohmann::json& weight_map) {
  Tensor a(DType::F32, {2}), b(DType::BF16, {3}), c(DType::I32, {1});
  write_safetensors(dir.file("model-00001-of-00002.safetensors"), {{"a", a}, {"b", b}});
  write_safetensors(dir.file("model-00002-of-00002.safetensors"), {{"c", c}});
  std::ofstream(dir.file("model.safetensors.index.json")) << nlohmann::json{{"weight_map", weight_map}}.dump();
}

TEST(Checkpoint, ShardedOpensAsOneMap) {
  TempDir dir;
  write_sharded(dir, {{"a", "model-00001-of-00002.safetensors"},
                      {"b", "model-00001-of-00002.safetensors"},
                      {"c", "model-00002-of-00002.safetensors"}});
  auto ck = Checkpoint::open(dir.path().string());
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ck.shards().size(), 2u);
  EXPECT_EQ(ck.at("c").dtype, DType::I32);
  Checkpoint moved = std::move(ck);
  EXPECT_EQ(moved.at("b").shape, (Shape{3}));
}

TEST(Checkpoint, IndexAndShardsMustAgree) {
  {
    TempDir dir;
    write_sharded(dir, {{"a", "model-00001-of-00002.safetensors"}, {"c", "model-00002-of-00002.safetensors"}});
    EXPECT_HILO_ERROR(Checkpoint::open(dir.path().string()), "tensor 'b' in shard");
  }
  {
    TempDir dir;
    write_sharded(dir, {{"a", "model-00001-of-00002.safetensors"},
                        {"b", "model-00002-of-00002.safetensors"},
                        {"c", "model-00002-of-00002.safetensors"}});
    EXPECT_HILO_ERROR(Checkpoint::open(dir.path().string()), "but the index names");
  }
  {
    TempDir dir;
    write_sharded(dir, {{"a", "model-00001-of-00002.safetensors"},
                        {"b", "model-00001-of-00002.safetensors"},
                        {"c", "model-00002-of-00002.safetensors"},
                        {"d", "model-00002-of-00002.safetensors"}});
    EXPECT_HILO_ERROR(Checkpoint::open(dir.path().string()), "lists tensor 'd'");
  }
  {
    TempDir dir;
    write_sharded(dir, {{"a", "../elsewhere.safetensors"}});
    EXPECT_HILO_ERROR(Checkpoint::open(dir.path().string()), "not a file in the checkpoint directory");
  }
  {
    TempDir dir;
    std::ofstream(dir.file("model.safetensors.index.json")) << "{\"weight_map\": ";
    EXPECT_HILO_ERROR(Checkpoint::open(dir.path().string()), "is not valid JSON");
  }
  TempDir empty;
  EXPECT_HILO_ERROR(Checkpoint::open(empty.path().string()), "neither model.safetensors");
  EXPECT_HILO_ERROR(Checkpoint::open(empty.file("nope")), "does not exist");
}

TEST(Checkpoint, SingleFileAndSingleModelFile) {
  TempDir dir;
  Tensor a(DType::F32, {2});
  write_safetensors(dir.file("model.safetensors"), {{"a", a}});
  EXPECT_EQ(Checkpoint::open(dir.path().string()).size(), 1u);
  EXPECT_EQ(Checkpoint::open(dir.file("model.safetensors")).size(), 1u);
}

TEST(Checkpoint, FixtureModelMatchesItsIndex) {
  const std::string root = HILO_FIXTURE_DIR;
  if (!std::filesystem::exists(root + "/model.safetensors.index.json")) GTEST_SKIP() << "no fixture at " << root;
  auto ck = Checkpoint::open(root);
  EXPECT_EQ(ck.shards().size(), 3u);
  std::ifstream idx(root + "/model.safetensors.index.json");
  const auto index = nlohmann::json::parse(idx);
  EXPECT_EQ(ck.size(), index["weight_map"].size());
  std::ifstream cfg_in(root + "/config.json");
  const auto cfg = nlohmann::json::parse(cfg_in);
  const int64_t hidden = cfg["hidden_size"], vocab = cfg["vocab_size"];
  EXPECT_EQ(ck.at("model.embed_tokens.weight").shape, (Shape{vocab, hidden}));
  int64_t params = 0;
  for (const auto& name : ck.names()) {
    const TensorEntry& e = ck.at(name);
    EXPECT_EQ(e.dtype, DType::BF16) << name;
    params += e.view().numel();
  }
  EXPECT_GT(params, 16'000'000);
  EXPECT_LT(params, 17'500'000);
}

}  // namespace
}  // namespace hilo
