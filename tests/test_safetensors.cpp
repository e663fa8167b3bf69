// The safetensors reader and writer: round trips, a file written by the reference
// Python implementation, and one test per kind of corruption the reader must refuse.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace darkroom {
namespace {

namespace fs = std::filesystem;

// A path under the test temp dir, unique per test (ctest may run tests in parallel).
std::string temp_path(const std::string& suffix = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return ::testing::TempDir() + "darkroom_" + info->test_suite_name() + "_" + info->name() +
         suffix + ".safetensors";
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file with the given header text and `data_bytes` zero bytes of data section.
std::string file_with(const std::string& header, size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\0');
}

// Opens `bytes` as a file and as an in-memory buffer; both must fail with a message
// that starts with "[safetensors] <source>: " and contains every one of `reasons`.
void expect_rejected(const std::string& bytes, std::initializer_list<std::string> reasons) {
  const std::string path = temp_path();
  write_bytes(path, bytes);
  auto check = [&](const std::string& source, auto&& run) {
    try {
      run();
      ADD_FAILURE() << source << ": accepted a corrupt file";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("[safetensors] " + source + ": ", 0), 0u) << msg;
      for (const std::string& r : reasons)
        EXPECT_NE(msg.find(r), std::string::npos) << "missing '" << r << "' in: " << msg;
    }
  };
  check(path, [&] { SafetensorsFile::open(path); });
  std::vector<uint8_t> mem(bytes.begin(), bytes.end());
  check("<memory>", [&] { parse_safetensors_header(mem, "<memory>"); });
  fs::remove(path);
}

// One valid f32 [2, 2] entry at [0, 16), for corruption tests that need a neighbour.
const char* kGoodEntry = R"("ok": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]})";

std::string raw_bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw()), t.nbytes());
}

Tensor tensor_of_bytes(const Shape& shape, DType dtype, const std::vector<uint8_t>& bytes) {
  Tensor t = Tensor::empty(shape, dtype);
  EXPECT_EQ(t.nbytes(), bytes.size());
  std::memcpy(t.raw(), bytes.data(), bytes.size());
  return t;
}

// ---------------------------------------------------------------- round trips

TEST(Safetensors, RoundTripEveryDtypeAndMetadata) {
  std::vector<float> f32_values = {1.0f, -2.5f, 3.25f, 1e-3f, 65504.0f, -0.0f};
  std::vector<int64_t> i64_values = {0, -1, INT64_MAX, INT64_MIN, 42};
  std::vector<uint8_t> i64_bytes(i64_values.size() * 8);
  std::memcpy(i64_bytes.data(), i64_values.data(), i64_bytes.size());

  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"f32", Tensor::from_floats(f32_values, {2, 3}, DType::F32)},
      {"bf16", Tensor::from_floats(f32_values, {3, 2}, DType::BF16)},
      {"f16", Tensor::from_floats(f32_values, {6}, DType::F16)},
      {"i64", tensor_of_bytes({5}, DType::I64, i64_bytes)},
      {"u8", tensor_of_bytes({1, 3}, DType::U8, {0, 128, 255})},
      {"f8_e4m3", tensor_of_bytes({2, 2}, DType::F8E4M3, {0x38, 0xb8, 0x7e, 0x01})},
      {"f8_e5m2", tensor_of_bytes({3}, DType::F8E5M2, {0x3c, 0xfb, 0x7c})},
      {"bool", tensor_of_bytes({2}, DType::Bool, {1, 0})},
      {"empty", Tensor::empty({0, 4}, DType::F32)},
      {"w\xc3\xa9ight.0", Tensor::from_floats(std::vector<float>{7.0f}, {}, DType::F32)},
  };
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "quote \" backslash \\ newline \n caf\xc3\xa9"}, {"empty", ""}};
  const std::string path = temp_path();
  write_safetensors(path, tensors, metadata);

  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata(), metadata);
  // tensors() is in data order, which is the order written.
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, want] = tensors[i];
    const TensorInfo& info = f.tensors()[i];
    EXPECT_EQ(info.name, name);
    EXPECT_EQ(info.dtype, want.dtype()) << name;
    EXPECT_EQ(info.shape, want.shape()) << name;
    EXPECT_EQ(info.nbytes(), want.nbytes()) << name;
    ASSERT_EQ(f.find(name), &info) << name;
    Tensor got = f.tensor(name);
    EXPECT_EQ(got.dtype(), want.dtype()) << name;
    EXPECT_EQ(got.shape(), want.shape()) << name;
    EXPECT_EQ(raw_bytes(got), raw_bytes(want)) << name;
  }
  // And the values themselves, read back through the dtype.
  EXPECT_EQ(f.tensor("f32").to_floats(), f32_values);
  EXPECT_EQ(f.tensor("i64").data<int64_t>()[2], INT64_MAX);
  EXPECT_EQ(f.tensor("f8_e4m3").to_floats()[0], 1.0f);  // 0x38 = 0 0111 000 = 2^0
  EXPECT_EQ(f.tensor("f8_e5m2").to_floats()[0], 1.0f);  // 0x3c = 0 01111 00 = 2^0
  fs::remove(path);
}

// The bytes on disk, read with an independent JSON parse: length prefix, space padding,
// entries and the data section laid out back to back in the given order.
TEST(Safetensors, WriterLayoutFollowsTheFormat) {
  Tensor a = Tensor::from_floats(std::vector<float>{1, 2, 3}, {3}, DType::F32);
  Tensor b = Tensor::from_floats(std::vector<float>{4, 5}, {1, 2}, DType::BF16);
  const std::string path = temp_path();
  write_safetensors(path, {{"z_first", a}, {"a_second", b}}, {{"k", "v"}});
  const std::string bytes = read_bytes(path);

  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ((8 + n) % 64, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 12 + 4);
  const std::string header = bytes.substr(8, n);
  const size_t json_end = header.find_last_not_of(' ') + 1;
  EXPECT_EQ(header[json_end - 1], '}');

  auto j = nlohmann::json::parse(header.substr(0, json_end));
  EXPECT_EQ(j["__metadata__"], nlohmann::json({{"k", "v"}}));
  EXPECT_EQ(j["z_first"]["dtype"], "F32");
  EXPECT_EQ(j["z_first"]["shape"], nlohmann::json({3}));
  EXPECT_EQ(j["z_first"]["data_offsets"], nlohmann::json({0, 12}));
  EXPECT_EQ(j["a_second"]["dtype"], "BF16");
  EXPECT_EQ(j["a_second"]["shape"], nlohmann::json({1, 2}));
  EXPECT_EQ(j["a_second"]["data_offsets"], nlohmann::json({12, 16}));
  EXPECT_EQ(bytes.substr(8 + n), raw_bytes(a) + raw_bytes(b));
  fs::remove(path);
}

TEST(Safetensors, WriterReplacesFilesAtomically) {
  const std::string dir = ::testing::TempDir() + "darkroom_safetensors_atomic";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = dir + "/model.safetensors";
  write_safetensors(path, {{"x", Tensor::from_floats(std::vector<float>{1}, {1})}});
  write_safetensors(path, {{"y", Tensor::from_floats(std::vector<float>{2, 3}, {2})}});

  SafetensorsFile f = SafetensorsFile::open(path);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].name, "y");
  EXPECT_EQ(f.tensor("y").to_floats(), (std::vector<float>{2, 3}));
  // No temporary file is left behind.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e.path().filename());
  EXPECT_EQ(entries, std::vector<std::string>{"model.safetensors"});
  fs::remove_all(dir);
}

TEST(Safetensors, WriterRejectsBadNames) {
  const std::string path = temp_path();
  Tensor t = Tensor::from_floats(std::vector<float>{1}, {1});
  EXPECT_THROW(write_safetensors(path, {{"a", t}, {"a", t}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", t}}), Error);
  // JSON strings must be UTF-8.
  EXPECT_THROW(write_safetensors(path, {{"bad\xff", t}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"a", t}}, {{"k", "\xc3"}}), Error);
  EXPECT_FALSE(fs::exists(path));
}

// ---------------------------------------------------------------- reference file

// Written by tools/make_safetensors_reference.py with safetensors.numpy.save_file; the
// expected values are the formulas in that script.
TEST(Safetensors, ReadsFileFromReferenceImplementation) {
  SafetensorsFile f = SafetensorsFile::open(std::string(DARKROOM_TEST_DATA) +
                                            "/safetensors/reference_small.safetensors");
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{
                              {"format", "np"}, {"producer", "make_safetensors_reference.py"}}));
  EXPECT_EQ(f.tensors().size(), 8u);

  Tensor a = f.tensor("arange_f32");
  EXPECT_EQ(a.dtype(), DType::F32);
  EXPECT_EQ(a.shape(), Shape({3, 4}));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(a.data<float>()[i], static_cast<float>(i));

  Tensor r = f.tensor("ramp_i64");
  EXPECT_EQ(r.dtype(), DType::I64);
  EXPECT_EQ(r.shape(), Shape({6}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.data<int64_t>()[i], i - 3);

  Tensor q = f.tensor("quarters_f16");
  EXPECT_EQ(q.dtype(), DType::F16);
  EXPECT_EQ(q.shape(), Shape({2, 2, 2}));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(to_f32(q.data<f16>()[i]), i * 0.25f - 1.0f);

  Tensor u = f.tensor("steps_u8");
  EXPECT_EQ(u.dtype(), DType::U8);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(u.data<uint8_t>()[i], i * 50);

  Tensor b = f.tensor("flags_bool");
  EXPECT_EQ(b.dtype(), DType::Bool);
  EXPECT_EQ(b.shape(), Shape({4}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b.data<uint8_t>()[i], i % 2 == 0 ? 1 : 0);

  Tensor d = f.tensor("neg_f64");
  EXPECT_EQ(d.dtype(), DType::F64);
  EXPECT_EQ(d.shape(), Shape({3, 1}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(d.data<double>()[i], -1.5 - i);

  Tensor s = f.tensor("scalar_i32");
  EXPECT_EQ(s.dtype(), DType::I32);
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.data<int32_t>()[0], 7);

  Tensor e = f.tensor("empty_f32");
  EXPECT_EQ(e.shape(), Shape({0, 3}));
  EXPECT_EQ(e.numel(), 0);
}

// ---------------------------------------------------------------- views

TEST(Safetensors, ViewOutlivesTheFile) {
  const std::string path = temp_path();
  write_safetensors(path, {{"x", Tensor::from_floats(std::vector<float>{1.5f, -2.0f}, {2})}});
  Tensor view;
  {
    SafetensorsFile f = SafetensorsFile::open(path);
    view = f.tensor("x");
  }
  // The file object is gone (and the file itself too); the mapping must still be there.
  fs::remove(path);
  EXPECT_EQ(view.to_floats(), (std::vector<float>{1.5f, -2.0f}));
}

TEST(Safetensors, ViewsShareTheMappingWithoutCopying) {
  const std::string path = temp_path();
  write_safetensors(path, {{"a", Tensor::from_floats(std::vector<float>{1, 2, 3}, {3})},
                           {"b", Tensor::from_floats(std::vector<float>{4}, {1})}});
  SafetensorsFile f = SafetensorsFile::open(path);
  Tensor a = f.tensor("a");
  Tensor b = f.tensor("b");
  EXPECT_EQ(a.storage(), b.storage());
  EXPECT_EQ(a.device(), kCpu);
  // b lies 12 bytes after a in the file, and so in memory.
  EXPECT_EQ(static_cast<char*>(b.raw()) - static_cast<char*>(a.raw()), 12);
  // The writer starts the data section at a multiple of 64 bytes (and mmap at a page).
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw()) % 64, 0u);
  fs::remove(path);
}

TEST(Safetensors, MissingTensorIsAnError) {
  const std::string path = temp_path();
  write_safetensors(path, {{"a", Tensor::from_floats(std::vector<float>{1}, {1})}});
  SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.find("b"), nullptr);
  try {
    f.tensor("b");
    ADD_FAILURE() << "no error for a missing tensor";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[safetensors] " + path + ": no tensor named 'b'");
  }
  fs::remove(path);
}

TEST(Safetensors, MissingFileIsAnError) {
  const std::string path = temp_path("_does_not_exist");
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[safetensors] " + path + ": cannot open"),
              std::string::npos)
        << e.what();
  }
}

TEST(Safetensors, DirectoryIsAnError) {
  try {
    SafetensorsFile::open(::testing::TempDir());
    ADD_FAILURE() << "opened a directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- accepted oddities

TEST(Safetensors, AcceptsPaddingGapsZeroSizeTensorsAndTrailingBytes) {
  // Header padded with spaces; a gap [16, 20); zero-size tensors at the start, inside
  // another's range, and at the very end; 4 unused bytes after the last tensor.
  const std::string header = R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
      "b": {"dtype": "I16", "shape": [2], "data_offsets": [20, 24]},
      "z0": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
      "z1": {"dtype": "BF16", "shape": [3, 0], "data_offsets": [8, 8]},
      "z2": {"dtype": "U8", "shape": [0], "data_offsets": [28, 28]}}      )";
  std::string bytes = file_with(header, 28);
  const std::string path = temp_path();
  write_bytes(path, bytes);
  SafetensorsFile f = SafetensorsFile::open(path);
  ASSERT_EQ(f.tensors().size(), 5u);
  // Data order: by begin, then end, then name.
  std::vector<std::string> order;
  for (const TensorInfo& t : f.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"z0", "a", "z1", "b", "z2"}));
  EXPECT_EQ(f.tensor("z2").numel(), 0);
  EXPECT_TRUE(f.metadata().empty());
  fs::remove(path);
}

// ---------------------------------------------------------------- lengths

TEST(Safetensors, RejectsFileShorterThanLengthField) {
  expect_rejected(std::string("\x10\0\0\0\0", 5), {"file is 5 bytes", "8-byte header length"});
}

TEST(Safetensors, RejectsEmptyFile) {
  expect_rejected("", {"file is 0 bytes"});
}

TEST(Safetensors, RejectsHeaderLengthZero) {
  expect_rejected(le64(0) + "{}", {"header length is 0"});
}

TEST(Safetensors, RejectsHeaderLengthPastEndOfFile) {
  expect_rejected(le64(100) + "{}", {"header length 100", "larger than the 2 bytes"});
}

TEST(Safetensors, RejectsHeaderLengthAboveLimit) {
  expect_rejected(le64(100'000'001) + "{}",
                  {"header length 100000001", "above the limit of 100000000"});
  expect_rejected(le64(UINT64_MAX) + "{}", {"header length 18446744073709551615", "limit"});
}

// ---------------------------------------------------------------- JSON structure

TEST(Safetensors, RejectsMalformedJson) {
  expect_rejected(file_with(R"({"a": {"dtype": "F32", )", 0), {"header is not valid JSON"});
  expect_rejected(file_with(R"({"a": 1} trailing)", 0), {"header is not valid JSON"});
}

TEST(Safetensors, RejectsInvalidUtf8InHeader) {
  // The offending byte is quoted escaped, so that the message stays printable.
  expect_rejected(file_with("{\"\xff\xfe\": {}}", 0), {"header is not valid JSON", "\\xff"});
}

TEST(Safetensors, RejectsTopLevelNotObject) {
  expect_rejected(file_with("[1, 2]", 0), {"header is an array", "expected a JSON object"});
}

TEST(Safetensors, RejectsEntryNotObject) {
  expect_rejected(file_with(R"({"w": 3})", 0), {"tensor 'w'", "entry is 3", "expected an object"});
}

TEST(Safetensors, RejectsUnknownEntryKey) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "dtpye": 1}})", 4),
      {"tensor 'w'", "unknown key 'dtpye'"});
}

TEST(Safetensors, RejectsContainersNestedTooDeep) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [[[1]]], "data_offsets": [0, 4]}})", 4),
      {"nests an array at depth 3", "inside 'w'"});
}

// ---------------------------------------------------------------- dtype

TEST(Safetensors, RejectsMissingDtype) {
  expect_rejected(file_with(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "missing \"dtype\""});
}

TEST(Safetensors, RejectsDtypeNotString) {
  expect_rejected(file_with(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "\"dtype\" is 4", "expected a string"});
}

TEST(Safetensors, RejectsUnknownDtype) {
  expect_rejected(file_with(R"({"w": {"dtype": "U32", "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "unknown dtype 'U32'"});
  // Spelled as darkroom does, not as the format does.
  expect_rejected(file_with(R"({"w": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"unknown dtype 'f32'"});
}

// ---------------------------------------------------------------- shape

TEST(Safetensors, RejectsMissingShape) {
  expect_rejected(file_with(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "missing \"shape\""});
}

TEST(Safetensors, RejectsShapeNotArray) {
  expect_rejected(file_with(R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4),
                  {"tensor 'w'", "\"shape\" is 1", "expected an array"});
}

TEST(Safetensors, RejectsNegativeDim) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 4]}})", 4),
      {"tensor 'w'", "shape[1] is negative (-3)"});
}

TEST(Safetensors, RejectsNonIntegerDim) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 4]}})", 4),
      {"tensor 'w'", "shape[0] is 2.5", "expected a non-negative integer"});
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", 4),
      {"tensor 'w'", "shape[0] is the string \"1\""});
}

TEST(Safetensors, RejectsDimAboveInt64) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "U8", "shape": [9223372036854775808], "data_offsets": [0, 4]}})",
                4),
      {"tensor 'w'", "shape[0] = 9223372036854775808 is larger than 2^63 - 1"});
}

// ---------------------------------------------------------------- data_offsets

TEST(Safetensors, RejectsMissingDataOffsets) {
  expect_rejected(file_with(R"({"w": {"dtype": "F32", "shape": [1]}})", 4),
                  {"tensor 'w'", "missing \"data_offsets\""});
}

TEST(Safetensors, RejectsDataOffsetsOfWrongLength) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 8),
      {"tensor 'w'", "an array of 3 elements", "expected [begin, end]"});
  expect_rejected(file_with(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": 4}})", 4),
                  {"tensor 'w'", "\"data_offsets\" is 4"});
}

TEST(Safetensors, RejectsNegativeDataOffset) {
  expect_rejected(file_with(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4),
                  {"tensor 'w'", "data_offsets[0] (begin) is negative (-4)"});
}

TEST(Safetensors, RejectsNonIntegerDataOffset) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4.0]}})", 4),
      {"tensor 'w'", "data_offsets[1] (end) is 4.0", "non-negative integer"});
}

TEST(Safetensors, RejectsBeginAfterEnd) {
  expect_rejected(file_with(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8),
                  {"tensor 'w'", "data_offsets [8, 4] end before begin"});
}

// ---------------------------------------------------------------- sizes and ranges

TEST(Safetensors, RejectsShapeThatDisagreesWithByteRange) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16),
      {"tensor 'w'", "shape [2, 2] of F32 (4 bytes each) needs 16 bytes",
       "data_offsets [0, 12] span 12"});
}

TEST(Safetensors, RejectsElementCountOverflow) {
  // 2^32 · 2^32 = 2^64 elements.
  expect_rejected(
      file_with(
          R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})",
          0),
      {"tensor 'w'", "shape [4294967296, 4294967296] has more than 2^63 - 1 elements"});
  // A zero dimension after the overflow does not save it (Shape::numel would overflow).
  expect_rejected(
      file_with(
          R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]}})",
          0),
      {"has more than 2^63 - 1 elements"});
}

TEST(Safetensors, RejectsByteSizeOverflow) {
  // 2^62 elements fit in int64, but 2^62 · 8 bytes = 2^65 do not fit in u64.
  expect_rejected(
      file_with(
          R"({"w": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0),
      {"tensor 'w'", "shape [4611686018427387904] of F64 overflows"});
}

TEST(Safetensors, RejectsRangePastDataSection) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12),
      {"tensor 'w'", "data_offsets [0, 16] end past the data section of 12 bytes"});
}

TEST(Safetensors, RejectsOverlappingTensors) {
  expect_rejected(
      file_with(std::string("{") + kGoodEntry +
                    R"(, "w": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                20),
      {"tensors 'ok' [0, 16) and 'w' [12, 20) overlap"});
  // The same range twice.
  expect_rejected(
      file_with(std::string("{") + kGoodEntry +
                    R"(, "w": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}})",
                16),
      {"tensors 'ok' [0, 16) and 'w' [0, 16) overlap"});
}

// ---------------------------------------------------------------- duplicates

TEST(Safetensors, RejectsDuplicateTensorName) {
  expect_rejected(file_with(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                    "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                            2),
                  {"duplicate tensor name 'w'"});
}

TEST(Safetensors, RejectsDuplicateKeyInsideEntry) {
  expect_rejected(
      file_with(R"({"w": {"dtype": "U8", "dtype": "F32", "shape": [1], "data_offsets": [0, 1]}})",
                4),
      {"duplicate key 'dtype' inside 'w'"});
}

// ---------------------------------------------------------------- metadata

TEST(Safetensors, RejectsMetadataNotObject) {
  expect_rejected(file_with(R"({"__metadata__": ["a"]})", 0),
                  {"\"__metadata__\" is an array", "expected an object of strings"});
}

TEST(Safetensors, RejectsMetadataValueNotString) {
  expect_rejected(file_with(R"({"__metadata__": {"epochs": 3}})", 0),
                  {"\"__metadata__\" key 'epochs' is 3", "expected a string"});
}

TEST(Safetensors, RejectsDuplicateMetadata) {
  expect_rejected(file_with(R"({"__metadata__": {"a": "1", "a": "2"}})", 0),
                  {"duplicate key 'a' inside '__metadata__'"});
  expect_rejected(file_with(R"({"__metadata__": {}, "__metadata__": {}})", 0),
                  {"duplicate \"__metadata__\""});
}

}  // namespace
}  // namespace darkroom
