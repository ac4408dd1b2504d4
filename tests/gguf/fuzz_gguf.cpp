// libFuzzer target for the GGUF reader. Any input must parse or throw tessera::Error; a file that
// parses must survive a copy through the Writer unchanged (same metadata, tensor shapes and bytes).
// Built with -fsanitize=fuzzer,address,undefined (tests/gguf/CMakeLists.txt), so memory errors,
// undefined behaviour, leaks, hangs (-timeout) and huge allocations (-malloc_limit_mb) are caught too.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "gguf/gguf.h"

using namespace tessera;

static void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_gguf: round-trip mismatch: %s\n", what);
    std::abort();
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gguf::File f;
  try {
    f = gguf::File::from_memory(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
  } catch (const Error&) {
    return 0;  // a clean rejection
  }
  // Touch everything the reader promised to be valid.
  for (const auto& [k, v] : f.metadata()) (void)gguf::type_string(v);
  uint64_t sum = 0;
  for (const gguf::TensorInfo& t : f.tensors())
    for (uint64_t i = 0; i < t.nbytes; i += 97) sum += t.data[i];
  (void)sum;

  gguf::Writer w;
  w.copy_metadata(f);
  for (const gguf::TensorInfo& t : f.tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                 std::vector<uint8_t>(t.data, t.data + t.nbytes));
  gguf::File g = gguf::File::from_memory(w.to_bytes(), "rewritten.gguf");
  expect(f.metadata().size() == g.metadata().size(), "metadata count");
  for (size_t i = 0; i < f.metadata().size(); ++i)
    expect(f.metadata()[i].first == g.metadata()[i].first && f.metadata()[i].second == g.metadata()[i].second, "metadata");
  expect(f.alignment() == g.alignment(), "alignment");
  expect(f.tensors().size() == g.tensors().size(), "tensor count");
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const gguf::TensorInfo& a = f.tensors()[i];
    const gguf::TensorInfo& b = g.tensors()[i];
    expect(a.name == b.name && a.type == b.type && a.n_dims == b.n_dims && a.ne == b.ne && a.nbytes == b.nbytes, "tensor info");
    expect(a.nbytes == 0 || std::memcmp(a.data, b.data, a.nbytes) == 0, "tensor data");
  }
  return 0;
}
