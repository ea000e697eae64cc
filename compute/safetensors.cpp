// safetensors reader and writer (see safetensors.hpp for the format). The
// host is assumed little-endian (x86-64, aarch64), as the static_assert pins.
#include "compute/safetensors.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace orbitrain::compute {

static_assert(sizeof(float) == 4 && sizeof(uint64_t) == 8, "format needs 4-byte floats");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

namespace {

// Header length larger than this is rejected as corrupt (the format's own limit).
constexpr uint64_t kMaxHeader = 100u * 1024 * 1024;

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw SafetensorsError(path + ": " + msg);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float v;
  if (exp == 0)
    v = std::ldexp(float(mant), -24);
  else if (exp == 31)
    v = mant ? NAN : INFINITY;
  else
    v = std::ldexp(float(mant | 0x400), exp - 25);
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u |= sign;
  std::memcpy(&v, &u, 4);
  return v;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i)
    r += (i ? ", " : "") + std::to_string(s[i]);
  return r + ")";
}

} // namespace

StFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, "cannot open file");
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  if (size < 8)
    fail(path, "truncated: " + std::to_string(size) + " bytes, no header length");
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (n > kMaxHeader)
    fail(path, "bad header: length " + std::to_string(n) + " is implausible");
  if (n > size - 8)
    fail(path, "truncated: header of " + std::to_string(n) + " bytes but only " +
                   std::to_string(size - 8) + " follow");
  std::string header(n, '\0');
  in.read(header.data(), std::streamsize(n));
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("bad header: not JSON: ") + e.what());
  }
  if (!h.is_object())
    fail(path, "bad header: not a JSON object");
  const uint64_t data_size = size - 8 - n;
  std::vector<char> data(data_size);
  in.read(data.data(), std::streamsize(data_size));
  if (!in)
    fail(path, "read error");

  StFile f;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        fail(path, "bad header: __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail(path, "bad header: __metadata__ value '" + m.key() + "' is not a string");
        f.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets") || !v["dtype"].is_string() || !v["shape"].is_array() ||
        !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail(path, "bad header: " + where + "needs dtype, shape and data_offsets [begin, end]");
    const std::string dtype = v["dtype"].get<std::string>();
    size_t elsize;
    if (dtype == "F32")
      elsize = 4;
    else if (dtype == "F16" || dtype == "BF16")
      elsize = 2;
    else if (dtype == "F64")
      elsize = 8;
    else
      fail(path, where + "unknown or unsupported dtype '" + dtype + "' (F32, F16, BF16, F64)");
    StTensor t;
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        fail(path, "bad header: " + where + "shape has a non-integer or negative dimension");
      t.shape.push_back(d.get<int64_t>());
      numel *= uint64_t(t.shape.back());
    }
    const auto& off = v["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, "bad header: " + where + "data_offsets must be non-negative integers");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e)
      fail(path, "bad header: " + where + "data_offsets begin > end");
    if (e > data_size)
      fail(path, "truncated: " + where + "data ends at byte " + std::to_string(e) +
                     " of a data section of " + std::to_string(data_size));
    if (e - b != numel * elsize)
      fail(path, "bad header: " + where + "shape " + shape_str(t.shape) + " of " + dtype +
                     " needs " + std::to_string(numel * elsize) + " bytes, data_offsets give " +
                     std::to_string(e - b));
    t.data.resize(numel);
    const char* src = data.data() + b;
    for (uint64_t i = 0; i < numel; ++i) {
      if (elsize == 4) {
        std::memcpy(&t.data[i], src + 4 * i, 4);
      } else if (elsize == 8) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        t.data[i] = float(d);
      } else {
        uint16_t u;
        std::memcpy(&u, src + 2 * i, 2);
        if (dtype == "BF16") {
          const uint32_t w = uint32_t(u) << 16;
          std::memcpy(&t.data[i], &w, 4);
        } else {
          t.data[i] = f16_to_f32(u);
        }
      }
    }
    f.tensors.emplace(name, std::move(t));
  }
  return f;
}

void write_safetensors(const std::string& path, const StFile& file) {
  nlohmann::json h = nlohmann::json::object();
  if (!file.metadata.empty())
    h["__metadata__"] = file.metadata;
  uint64_t off = 0;
  for (const auto& [name, t] : file.tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape)
      numel *= uint64_t(d);
    if (numel != t.data.size())
      fail(path, "tensor '" + name + "': shape " + shape_str(t.shape) + " does not match " +
                     std::to_string(t.data.size()) + " values");
    h[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {off, off + 4 * numel}}};
    off += 4 * numel;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' '); // keep the data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      fail(path, "cannot create " + tmp);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), std::streamsize(header.size()));
    for (const auto& [name, t] : file.tensors)
      out.write(reinterpret_cast<const char*>(t.data.data()),
                std::streamsize(t.data.size() * sizeof(float)));
    out.flush();
    if (!out)
      fail(path, "write error on " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    fail(path, "cannot rename " + tmp + ": " + ec.message());
}

void save_model(const std::string& path, const Gpt& model, const Tokenizer& tok) {
  StFile f;
  f.metadata["format"] = "pt";
  f.metadata["config"] = model.config().to_json().dump();
  f.metadata["vocab"] = tok.to_json();
  for (const ParamSpec& s : model.specs()) {
    StTensor t;
    t.shape = s.shape;
    const float* p = model.params().data() + s.offset;
    t.data.assign(p, p + s.numel);
    f.tensors.emplace(s.name, std::move(t));
  }
  write_safetensors(path, f);
}

ModelFileInfo read_model_info(const StFile& f, const std::string& path) {
  auto c = f.metadata.find("config");
  auto v = f.metadata.find("vocab");
  if (c == f.metadata.end() || v == f.metadata.end())
    fail(path, "__metadata__ lacks 'config' and 'vocab' (not an orbitrain/nanoGPT model file)");
  ModelFileInfo info;
  try {
    info.config = GptConfig::from_json(nlohmann::json::parse(c->second));
    info.tokenizer = Tokenizer::from_json(v->second);
  } catch (const std::exception& e) {
    fail(path, std::string("bad __metadata__: ") + e.what());
  }
  if (info.config.vocab_size == 0)
    info.config.vocab_size = info.tokenizer.size();
  if (info.config.vocab_size != info.tokenizer.size())
    fail(path, "bad __metadata__: config vocab_size " + std::to_string(info.config.vocab_size) +
                   " but the vocabulary has " + std::to_string(info.tokenizer.size()) + " bytes");
  try {
    info.config.validate();
  } catch (const std::exception& e) {
    fail(path, e.what());
  }
  return info;
}

void load_weights(Gpt& model, const StFile& f, const std::string& path) {
  std::set<std::string> known;
  for (const ParamSpec& s : parameter_specs(model.config(), StageRange::whole()))
    known.insert(s.name);
  for (const auto& [name, t] : f.tensors) {
    if (known.count(name) || name == "lm_head.weight")
      continue;
    fail(path, "tensor '" + name + "': not a parameter of this model");
  }
  for (const ParamSpec& s : model.specs()) {
    auto it = f.tensors.find(s.name);
    if (it == f.tensors.end())
      fail(path, "tensor '" + s.name + "': missing");
    if (it->second.shape != s.shape)
      fail(path, "tensor '" + s.name + "': shape mismatch: file has " +
                     shape_str(it->second.shape) + ", the config needs " + shape_str(s.shape));
    std::memcpy(model.params().data() + s.offset, it->second.data.data(), s.numel * sizeof(float));
  }
}

LoadedModel load_model(const std::string& path, Precision precision, StageRange range) {
  StFile f = read_safetensors(path);
  LoadedModel m;
  m.info = read_model_info(f, path);
  m.model = std::make_unique<Gpt>(m.info.config, range, precision);
  load_weights(*m.model, f, path);
  return m;
}

} // namespace orbitrain::compute
