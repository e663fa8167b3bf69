// libFuzzer target for the .ckpt reader's two parsers. Each input is tried twice:
//  1. as a whole torch.save archive (ZIP via minizip, then data.pkl through the VM and
//     the flattening/validation of io/pickle_archive.h);
//  2. as a bare data.pkl program for the restricted pickle VM, which is where hostile
//     bytes are interpreted and where most mutations should land.
// Only darkroom::Error may come out. What the archive parser accepts must satisfy what
// TorchCheckpoint::tensor relies on; that is re-checked here independently.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/pickle_archive.h"
#include "io/pickle_vm.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_accepted(const darkroom::CkptArchive& a, std::span<const uint8_t> file) {
  for (const darkroom::CkptTensorInfo& t : a.tensors) {
    auto it = a.storages.find(t.storage);
    check(it != a.storages.end());
    const darkroom::CkptEntry& e = it->second;
    if (e.stored) check(e.data_offset <= file.size() && e.size <= file.size() - e.data_offset);
    check(t.shape.ndim() == static_cast<int>(t.stride.size()));
    // The last element read lies inside the entry.
    const size_t elem = darkroom::dtype_size(t.dtype);
    uint64_t last = t.byte_offset / elem;
    bool empty = false;
    for (int d = 0; d < t.shape.ndim(); ++d) {
      check(t.shape[d] >= 0 && t.stride[static_cast<size_t>(d)] >= 0);
      if (t.shape[d] == 0)
        empty = true;
      else
        last += static_cast<uint64_t>(t.shape[d] - 1) *
                static_cast<uint64_t>(t.stride[static_cast<size_t>(d)]);
    }
    if (!empty) check((last + 1) * elem <= e.size);
    // Reading the entry must work (deflated ones are inflated here).
    std::vector<uint8_t> scratch;
    try {
      std::span<const uint8_t> bytes = darkroom::ckpt_entry_bytes(file, e, "<fuzz>", scratch);
      check(bytes.size() == e.size);
    } catch (const darkroom::Error&) {
      check(!e.stored);  // a stored entry's bytes were validated at parse time
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  try {
    darkroom::CkptArchive a = darkroom::parse_torch_archive(input, "<fuzz>");
    check_accepted(a, input);
  } catch (const darkroom::Error&) {
  }
  try {
    darkroom::PickleResult r = darkroom::run_restricted_pickle(input, "<fuzz>");
    check(r.root != nullptr);
  } catch (const darkroom::Error&) {
  }
  return 0;
}
