// The torch.save (.ckpt) reader: a small SD-like checkpoint compared value for value
// with the same tensors written by safetensors.torch (tools/make_ckpt_fixtures.py),
// hostile pickles that must be refused by name, corrupt archives, and the restricted
// pickle VM on hand-assembled programs.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/pickle_vm.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

namespace darkroom {
namespace {

std::string fixture(const std::string& name) {
  return std::string(DARKROOM_TEST_DATA) + "/ckpt/" + name;
}

// The darkroom::Error message of `f()`, or "" if it did not throw.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Every tensor of the safetensors reference must be in `ckpt` (under the same name),
// with its dtype, shape and exact bytes, and nothing else may be there.
void expect_matches_reference(const TorchCheckpoint& ckpt) {
  SafetensorsFile ref = SafetensorsFile::open(fixture("sd_like.safetensors"));
  ASSERT_EQ(ckpt.tensors().size(), ref.tensors().size());
  for (const TensorInfo& r : ref.tensors()) {
    SCOPED_TRACE(r.name);
    ASSERT_NE(ckpt.find(r.name), nullptr);
    Tensor want = ref.tensor(r.name);
    Tensor got = ckpt.tensor(r.name);
    EXPECT_EQ(got.dtype(), want.dtype());
    EXPECT_EQ(got.shape(), want.shape());
    ASSERT_EQ(got.nbytes(), want.nbytes());
    EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0);
  }
}

TEST(TorchCheckpoint, ReadsSdLikeCheckpoint) {
  TorchCheckpoint ckpt = TorchCheckpoint::open(fixture("sd_like.ckpt"));
  expect_matches_reference(ckpt);
  EXPECT_EQ(ckpt.metadata().at("global_step"), "5");
  EXPECT_EQ(ckpt.metadata().at("epoch"), "1");

  // The dtypes as torch saved them (names nest under "state_dict.", nothing stripped).
  EXPECT_EQ(ckpt.find("state_dict.model.diffusion_model.conv.weight")->dtype, DType::F32);
  EXPECT_EQ(ckpt.find("state_dict.model.diffusion_model.conv.bias")->dtype, DType::F16);
  EXPECT_EQ(ckpt.find("state_dict.first_stage_model.norm.weight")->dtype, DType::BF16);
  EXPECT_EQ(ckpt.find("state_dict.cond_stage_model.transformer.text_model.embeddings.position_ids")
                ->dtype,
            DType::I64);
  EXPECT_EQ(ckpt.find("state_dict.model.scalar")->shape, Shape{});
  EXPECT_EQ(ckpt.find("model.diffusion_model.conv.weight"), nullptr);

  // Shared storage: the tied weights and the two slices of one storage view one file
  // region each, at their own offsets, straight from the mapping.
  const CkptTensorInfo* a = ckpt.find("state_dict.model.tied_a");
  const CkptTensorInfo* b = ckpt.find("state_dict.model.tied_b");
  EXPECT_EQ(a->storage, b->storage);
  const CkptTensorInfo* w = ckpt.find("state_dict.cond_stage_model.proj.weight");
  const CkptTensorInfo* bias = ckpt.find("state_dict.cond_stage_model.proj.bias");
  EXPECT_EQ(w->storage, bias->storage);
  EXPECT_EQ(w->byte_offset, 2u * 4 * 4);  // base[2:5] of a [6, 4] f32 storage
  EXPECT_EQ(bias->byte_offset, 5u * 4 * 4);
  EXPECT_EQ(ckpt.tensor("state_dict.model.tied_a").storage(),
            ckpt.tensor("state_dict.cond_stage_model.proj.weight").storage());
  // The transposed tensor was copied to contiguous memory of its own.
  EXPECT_FALSE(ckpt.find("state_dict.model.transposed")->contiguous);
  EXPECT_NE(ckpt.tensor("state_dict.model.transposed").storage(),
            ckpt.tensor("state_dict.model.tied_a").storage());
}

TEST(TorchCheckpoint, ReadsDeflatedArchive) {
  expect_matches_reference(TorchCheckpoint::open(fixture("sd_like_deflated.ckpt")));
}

TEST(TorchCheckpoint, RefusesHostileGlobals) {
  const std::string sys = fixture("hostile_system.ckpt");
  EXPECT_EQ(error_of([&] { TorchCheckpoint::open(sys); }),
            "[ckpt] " + sys +
                ": refuses global 'posix.system' (only PyTorch state-dict types are allowed)");
  const std::string ev = fixture("hostile_eval.ckpt");
  EXPECT_EQ(error_of([&] { TorchCheckpoint::open(ev); }),
            "[ckpt] " + ev +
                ": refuses global '__builtin__.eval' (only PyTorch state-dict types are allowed)");
  const std::string np = fixture("hostile_numpy.ckpt");
  EXPECT_EQ(error_of([&] { TorchCheckpoint::open(np); }),
            "[ckpt] " + np +
                ": refuses global 'numpy._core.multiarray.scalar' (only PyTorch state-dict types "
                "are allowed)");
}

TEST(TorchCheckpoint, RefusesLegacyFormat) {
  EXPECT_NE(error_of([] {
              TorchCheckpoint::open(fixture("legacy.ckpt"));
            }).find("legacy (pre-1.6) torch.save format is not supported"),
            std::string::npos);
}

TEST(TorchCheckpoint, RefusesCorruptArchives) {
  const std::pair<const char*, const char*> cases[] = {
      {"corrupt_truncated.ckpt", "not a readable ZIP archive"},
      {"corrupt_directory.ckpt", "ZIP directory is corrupt at entry 0 of 15"},
      {"corrupt_no_pickle.ckpt", "no <name>/data.pkl entry"},
      {"corrupt_short_storage.ckpt", "holds 8 bytes but its tensors need"},
      {"corrupt_cycle.ckpt", "data.pkl nests deeper than 64 at 'a.a.a."},
  };
  for (const auto& [file, message] : cases) {
    const std::string err = error_of([&] { TorchCheckpoint::open(fixture(file)); });
    EXPECT_NE(err.find(message), std::string::npos) << file << ": " << err;
    EXPECT_EQ(err.rfind("[ckpt] ", 0), 0u) << err;
  }
  EXPECT_NE(error_of([] {
              TorchCheckpoint::open(fixture("sd_like.safetensors"));
            }).find("no ZIP signature"),
            std::string::npos);
}

// ---- The pickle VM on hand-assembled programs ----

// Opcodes as bytes, for readable programs.
std::vector<uint8_t> bytes(std::initializer_list<int> b) {
  return {b.begin(), b.end()};
}
void append(std::vector<uint8_t>& p, const std::string& s) {
  p.insert(p.end(), s.begin(), s.end());
}
// BINUNICODE of `s`.
void unicode(std::vector<uint8_t>& p, const std::string& s) {
  p.push_back('X');
  for (int k = 0; k < 4; ++k) p.push_back(static_cast<uint8_t>(s.size() >> (8 * k)));
  append(p, s);
}

std::string vm_error(const std::vector<uint8_t>& p) {
  return error_of([&] { run_restricted_pickle(p, "<test>"); });
}

TEST(PickleVm, BuildsPlainData) {
  // {"a": [1, -2, 300, True, None], "b": (2.5,)} with a memo round trip.
  std::vector<uint8_t> p = bytes({0x80, 2, '}', 'q', 0, '('});
  unicode(p, "a");
  append(p, std::string("]q\x01(K\x01J\xfe\xff\xff\xffM\x2c\x01\x88Ne", 17));
  unicode(p, "b");
  append(p, std::string("G\x40\x04\0\0\0\0\0\0\x85u.", 12));
  PickleResult r = run_restricted_pickle(p, "<test>");
  ASSERT_EQ(r.root->kind, PickleKind::Dict);
  ASSERT_EQ(r.root->entries.size(), 2u);
  const PickleValue* list = r.root->entries[0].second;
  ASSERT_EQ(list->kind, PickleKind::List);
  ASSERT_EQ(list->items.size(), 5u);
  EXPECT_EQ(list->items[0]->i, 1);
  EXPECT_EQ(list->items[1]->i, -2);
  EXPECT_EQ(list->items[2]->i, 300);
  EXPECT_TRUE(list->items[3]->b);
  EXPECT_EQ(list->items[4]->kind, PickleKind::None);
  EXPECT_EQ(r.root->entries[1].second->items[0]->f, 2.5);
}

TEST(PickleVm, RefusesStackGlobalAndUnknownOpcodes) {
  // STACK_GLOBAL 'builtins' 'exec' (protocol 4 form).
  std::vector<uint8_t> p = bytes({0x80, 4});
  append(p, std::string("\x8c\x08"
                        "builtins\x8c\x04"
                        "exec\x93",
                        17));
  EXPECT_EQ(
      vm_error(p),
      "[ckpt] <test>: refuses global 'builtins.exec' (only PyTorch state-dict types are allowed)");
  // INST ('i'), OBJ ('o') and NEWOBJ (0x81) can construct arbitrary classes: not supported.
  for (int op : {int{'i'}, int{'o'}, 0x81, int{'R'}}) {
    const std::string err = vm_error(bytes({0x80, 2, op, '.'}));
    EXPECT_EQ(err.rfind("[ckpt] <test>: data.pkl: ", 0), 0u) << err;
  }
  // An allowed global may be named but only the state-dict ones may be called.
  std::vector<uint8_t> q = bytes({0x80, 2});
  append(q, "ctorch\nFloatStorage\n)R.");
  EXPECT_NE(vm_error(q).find("refuses to call 'torch.FloatStorage'"), std::string::npos);
}

TEST(PickleVm, BoundsChecks) {
  EXPECT_NE(vm_error(bytes({0x80, 2, 'h', 7, '.'})).find("memo index 7 was never stored"),
            std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f})).find("longer than"),
            std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 2, 'X', 9, 0, 0, 0, 'a'})).find("truncated"), std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 2, 'N', 'N', '.'})).find("STOP with 2 values"),
            std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 2, '(', 't'})).find("truncated"), std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 2, 'N', '(', 'a', '.'})).find("pops an empty stack"),
            std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 2, 'u'})).find("no MARK"), std::string::npos);
  EXPECT_NE(vm_error(bytes({0x80, 9})).find("protocol 9"), std::string::npos);
  // A tensor reaching past its storage: 3 elements of a 2-element storage.
  std::vector<uint8_t> t = bytes({0x80, 2});
  append(t, "ctorch._utils\n_rebuild_tensor_v2\n((");
  unicode(t, "storage");
  append(t, "ctorch\nFloatStorage\n");
  unicode(t, "0");
  unicode(t, "cpu");
  append(t, std::string("K\x02tQK\x00K\x03\x85K\x01\x85\x89}tR.", 17));
  EXPECT_NE(vm_error(t).find("tensor reads element 2 of a storage of 2"), std::string::npos);
}

TEST(PickleVm, SelfReferenceIsHeld) {
  // A list that contains itself parses (nothing leaks: the heap owns every object)...
  std::vector<uint8_t> p = bytes({0x80, 2, ']', 'q', 0, 'h', 0, 'a', '.'});
  PickleResult r = run_restricted_pickle(p, "<test>");
  EXPECT_EQ(r.root->items[0], r.root);
}

}  // namespace
}  // namespace darkroom
