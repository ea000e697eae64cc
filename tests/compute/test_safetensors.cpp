// safetensors: a model round-trips exactly (parameters, config, vocabulary),
// the file layout is the real format, and each kind of bad file gives an
// error that names the file and the tensor.
#include "compute/safetensors.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>

namespace orbitrain::compute {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("orbitrain_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    cfg_.n_layer = 2, cfg_.n_head = 2, cfg_.n_embd = 8, cfg_.block_size = 6;
    cfg_.vocab_size = 5, cfg_.bias = true;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static void write_raw(const std::string& p, const std::string& header, size_t data_bytes) {
    std::ofstream out(p, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << std::string(data_bytes, '\0');
  }
  // Asserts that loading p fails with a message containing every fragment.
  static void expect_error(const std::string& p, std::initializer_list<std::string> fragments,
                           const GptConfig* into = nullptr) {
    try {
      if (into) {
        Gpt m(*into);
        load_weights(m, read_safetensors(p), p);
      } else {
        (void)read_safetensors(p);
      }
      ADD_FAILURE() << "no error for " << p;
    } catch (const SafetensorsError& e) {
      for (const auto& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
            << "'" << f << "' not in: " << e.what();
    }
  }

  fs::path dir_;
  GptConfig cfg_;
};

TEST_F(SafetensorsTest, ModelRoundTrips) {
  Gpt m(cfg_);
  m.init_weights(5);
  for (size_t i = 0; i < m.params().size(); ++i) // biases non-zero too
    m.params()[i] += 0.001f * float(i % 7);
  Tokenizer tok(std::vector<uint8_t>{'a', 'b', '\n', 'z', 0xe9});
  save_model(path("m.safetensors"), m, tok);
  LoadedModel l = load_model(path("m.safetensors"));
  EXPECT_EQ(l.info.config, cfg_);
  EXPECT_EQ(l.info.tokenizer, tok);
  ASSERT_EQ(l.model->params().size(), m.params().size());
  EXPECT_EQ(0, std::memcmp(l.model->params().data(), m.params().data(), m.params().size() * 4));
  // A stage loads its part of a whole-model file.
  LoadedModel s = load_model(path("m.safetensors"), Precision::f32, {1, 2, false, true});
  const ParamSpec* w = s.model->find("transformer.h.1.attn.c_attn.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(0, std::memcmp(s.model->params().data() + w->offset,
                           m.params().data() + m.find(w->name)->offset, w->numel * 4));
}

TEST_F(SafetensorsTest, FileFollowsTheFormat) {
  Gpt m(cfg_);
  m.init_weights(5);
  save_model(path("m.safetensors"), m, Tokenizer(std::vector<uint8_t>{1, 2, 3, 4, 5}));
  std::ifstream in(path("m.safetensors"), std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
  std::string header(n, '\0');
  in.read(header.data(), std::streamsize(n));
  auto h = nlohmann::json::parse(header);
  EXPECT_EQ(h["__metadata__"]["vocab"], "[1,2,3,4,5]");
  EXPECT_EQ(nlohmann::json::parse(h["__metadata__"]["config"].get<std::string>())["n_embd"], 8);
  const auto& t = h["transformer.h.0.attn.c_attn.weight"];
  EXPECT_EQ(t["dtype"], "F32");
  EXPECT_EQ(t["shape"], nlohmann::json({24, 8}));
  const uint64_t b = t["data_offsets"][0], e = t["data_offsets"][1];
  EXPECT_EQ(e - b, 24u * 8 * 4);
  in.seekg(std::streamoff(8 + n + b));
  float first = 0;
  in.read(reinterpret_cast<char*>(&first), 4);
  EXPECT_EQ(first, m.params()[m.find("transformer.h.0.attn.c_attn.weight")->offset]);
  EXPECT_FALSE(h.contains("lm_head.weight"));
}

TEST_F(SafetensorsTest, ReadsBf16AndF16) {
  const std::string p = path("half.safetensors");
  std::ofstream out(p, std::ios::binary);
  const std::string header = R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})";
  const uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  const uint16_t vals[4] = {0x3fc0, 0xc000, 0x3c00, 0xb800}; // 1.5, -2 | 1, -0.5
  out.write(reinterpret_cast<const char*>(vals), 8);
  out.close();
  StFile f = read_safetensors(p);
  EXPECT_EQ(f.tensors["a"].data, (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(f.tensors["b"].data, (std::vector<float>{1.f, -0.5f}));
}

TEST_F(SafetensorsTest, TruncatedFile) {
  Gpt m(cfg_);
  save_model(path("m.safetensors"), m, Tokenizer(std::vector<uint8_t>{1, 2, 3, 4, 5}));
  const auto size = fs::file_size(path("m.safetensors"));
  fs::resize_file(path("m.safetensors"), size - 10);
  expect_error(path("m.safetensors"),
               {path("m.safetensors"), "truncated", "transformer.wte.weight"});
  fs::resize_file(path("m.safetensors"), 5);
  expect_error(path("m.safetensors"), {"truncated"});
  write_raw(path("short_header.safetensors"), "{\"a\":", 0);
  std::ofstream(path("short_header.safetensors"), std::ios::binary | std::ios::in)
      .write("\x40\0\0\0\0\0\0\0", 8); // claims 64 header bytes, has 5
  expect_error(path("short_header.safetensors"), {"truncated", "header"});
}

TEST_F(SafetensorsTest, BadHeader) {
  write_raw(path("notjson.safetensors"), "{not json}", 0);
  expect_error(path("notjson.safetensors"), {path("notjson.safetensors"), "bad header"});
  write_raw(path("nooffsets.safetensors"), R"({"w":{"dtype":"F32","shape":[2]}})", 8);
  expect_error(path("nooffsets.safetensors"), {"bad header", "'w'"});
  write_raw(path("size.safetensors"), R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
            8);
  expect_error(path("size.safetensors"), {"'w'", "needs 12 bytes"});
  write_raw(path("huge.safetensors"), "", 0);
  std::ofstream(path("huge.safetensors"), std::ios::binary | std::ios::in)
      .write("\xff\xff\xff\xff\xff\xff\xff\x7f", 8);
  expect_error(path("huge.safetensors"), {"bad header"});
}

TEST_F(SafetensorsTest, UnknownDtype) {
  write_raw(path("i8.safetensors"), R"({"wq":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})", 4);
  expect_error(path("i8.safetensors"), {path("i8.safetensors"), "'wq'", "dtype 'I8'"});
}

TEST_F(SafetensorsTest, ShapeMismatchWithConfig) {
  Gpt m(cfg_);
  save_model(path("m.safetensors"), m, Tokenizer(std::vector<uint8_t>{1, 2, 3, 4, 5}));
  GptConfig wider = cfg_;
  wider.n_embd = 16;
  expect_error(
      path("m.safetensors"),
      {path("m.safetensors"), "transformer.wte.weight", "shape mismatch", "(5, 8)", "(5, 16)"},
      &wider);
  GptConfig deeper = cfg_;
  deeper.n_layer = 3;
  expect_error(path("m.safetensors"), {"transformer.h.2.ln_1.weight", "missing"}, &deeper);
  GptConfig shallower = cfg_;
  shallower.n_layer = 1;
  expect_error(path("m.safetensors"), {"transformer.h.1.", "not a parameter"}, &shallower);
}

TEST_F(SafetensorsTest, MissingMetadata) {
  StFile f;
  f.tensors["transformer.wte.weight"] = {{1, 1}, {0.f}};
  write_safetensors(path("nometa.safetensors"), f);
  try {
    (void)load_model(path("nometa.safetensors"));
    ADD_FAILURE() << "no error";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find("__metadata__"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace orbitrain::compute
