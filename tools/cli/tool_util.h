// Helpers shared by the `tessera` subcommands: a stderr progress bar, row encode / decode for every
// type (F32/F16/BF16 here, quantized types through gguf/codecs.h), size formatting, reading a file.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "engine/model/model.h"
#include "gguf/ggml_types.h"
#include "tools/cli/args.h"

namespace tessera::cli {

// Thread-safe progress bar on stderr, redrawn at most every 100 ms ("\r" in place on a terminal,
// one line per 10% otherwise so logs stay short). Units are arbitrary (values, bytes).
class Progress {
 public:
  Progress(std::string label, uint64_t total, bool enabled = true);
  ~Progress();
  void add(uint64_t done);
  void finish();  // draws 100% and ends the line (idempotent)

 private:
  void draw(uint64_t done, bool final);

  std::string label_;
  uint64_t total_;
  bool enabled_, tty_;
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = -1;
  bool finished_ = false;
};

// Encodes n floats as type t into row_bytes(t, n) bytes at dst (n a multiple of the block size).
void encode_row(GgmlType t, const float* src, void* dst, int64_t n);
// Decodes n values of type t into floats.
void decode_row(GgmlType t, const void* src, float* dst, int64_t n);
bool can_encode(GgmlType t);
bool can_decode(GgmlType t);

// "1.23 GiB", "45.6 MiB", ...
std::string format_bytes(uint64_t bytes);

// Load options from --backend cpu|ref and --kernel OPKEY=NAME (repeatable, on top of TESSERA_KERNELS).
engine::LoadOptions load_options(Args& args);
extern const char* const kBackendUsage;  // the usage lines of those two flags

// The whole file as bytes; throws tessera::Error when it cannot be opened or is a directory.
std::string read_file(const std::string& path);

}  // namespace tessera::cli
