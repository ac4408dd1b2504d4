// Progress bar, row encode/decode, size formatting and file reading for the subcommands.
#include "tools/cli/tool_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "gguf/codecs.h"
#include "gguf/half.h"

namespace tessera::cli {

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total ? total : 1), enabled_(enabled), tty_(isatty(2) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (enabled_ && !finished_ && done_.load() > 0) std::fputc('\n', stderr);  // left mid-way (error)
}

void Progress::add(uint64_t n) {
  uint64_t done = done_.fetch_add(n) + n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);  // a busy bar just skips this update
  if (!lock.owns_lock() || finished_) return;
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done, false);
}

void Progress::finish() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  draw(total_, true);
  finished_ = true;
}

void Progress::draw(uint64_t done, bool final) {
  if (done > total_) done = total_;
  const double frac = static_cast<double>(done) / static_cast<double>(total_);
  const int decile = static_cast<int>(frac * 10);
  if (!tty_ && !final && decile == last_decile_) return;
  last_decile_ = decile;
  constexpr int kWidth = 30;
  char bar[kWidth + 1];
  const int filled = static_cast<int>(frac * kWidth);
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : (i == filled ? '>' : ' ');
  if (final) std::memset(bar, '#', kWidth);
  bar[kWidth] = '\0';
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s [%s] %3d%%  %.1f s%s", tty_ ? "\r" : "", label_.c_str(), bar,
               static_cast<int>(frac * 100), secs, (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

bool can_encode(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || has_encoder(t);
}

bool can_decode(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || has_decoder(t);
}

void encode_row(GgmlType t, const float* src, void* dst, int64_t n) {
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(src[i]);
      return;
    }
    default:
      quantize_row(t, src, dst, n);
  }
}

void decode_row(GgmlType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(in[i]);
      return;
    }
    case GgmlType::BF16: {
      auto* in = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(in[i]);
      return;
    }
    default:
      dequantize_row(t, src, dst, n);
  }
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

std::string read_file(const std::string& path) {
  // A directory opens as a stream on Linux and reads as empty text: refuse it by name.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw_error("'{}' is a directory, not a file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("cannot open '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* const kBackendUsage =
    "  --backend cpu|ref|vulkan|hip|hip-emu  cpu: the SIMD kernels for this CPU (default); ref: scalar reference\n"
    "                         ops; vulkan: compute shaders on a Vulkan device; hip: HIP kernels on an AMD GPU\n"
    "                         (ROCm runtime); hip-emu: the same HIP kernels on the CPU emulator (slow, for tests)\n"
    "  --device N             the Vulkan device (`tessera devices` lists them; default: the first GPU)\n"
    "  --kernel OPKEY=NAME    force a kernel by name or variant, e.g. gemv_q4_K=avx2 (repeatable)\n"
    "  --weights auto|mmap|copy  mmap: zero-copy from the page cache; copy: into huge-page memory, which\n"
    "                         the CPU streams ~10% faster; auto (default, or TESSERA_WEIGHTS): copy on the cpu\n"
    "                         backend when the file fits in half the available memory\n"
    "  --profile              at exit, where the time went: per-shader device times, dispatches and bytes\n"
    "                         read per decoded token (vulkan); the forward pass's stages (cpu, ref)\n";

engine::LoadOptions load_options(Args& args) {
  engine::LoadOptions lo;
  lo.backend = args.get({"--backend"}, "cpu");
  if ((", " + engine::backend_names() + ",").find(", " + lo.backend + ",") == std::string::npos)
    throw_error("--backend {}: not available in this build (available: {})", lo.backend, engine::backend_names());
  lo.device = static_cast<int>(args.get_int({"--device"}, -1, -1, 64));
  lo.profile = args.flag({"--profile"});
  lo.weights = args.get({"--weights"}, lo.weights);
  if (lo.weights != "auto" && lo.weights != "mmap" && lo.weights != "copy")
    throw_error("--weights / TESSERA_WEIGHTS {}: expected auto, mmap or copy", lo.weights);
  for (const std::string& k : args.values({"--kernel"})) {
    const size_t eq = k.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == k.size())
      throw_error("--kernel expects OPKEY=NAME (e.g. gemv_q4_K=avx2), got '{}'", k);
    lo.kernels.set(k.substr(0, eq), k.substr(eq + 1));
  }
  return lo;
}

}  // namespace tessera::cli
