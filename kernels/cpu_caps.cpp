// Runtime CPU feature detection with cpuid / xgetbv (the binary itself is baseline x86-64).
#include "kernels/cpu_caps.h"

#include <cstdlib>

#include "core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace tessera::ops {

std::string CpuCaps::describe() const {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx_vnni, "avx_vnni");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512_vnni, "avx512_vnni");
  add(avx512_bf16, "avx512_bf16");
  add(avx512_vbmi, "avx512_vbmi");
  return s.empty() ? "baseline" : s;
}

CpuCaps detect_cpu_caps() {
  CpuCaps c;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, cx, d;
  if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
  const bool osxsave = cx & (1u << 27);
  const bool has_fma = cx & (1u << 12), has_f16c = cx & (1u << 29), has_avx = cx & (1u << 28);
  if (!osxsave || !has_avx) return c;
  unsigned xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool ymm_state = (xlo & 0x6) == 0x6;            // SSE + AVX registers saved by the OS
  const bool zmm_state = ymm_state && (xlo & 0xe0) == 0xe0;  // opmask + upper zmm state
  if (!ymm_state) return c;
  c.fma = has_fma;
  c.f16c = has_f16c;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return c;
  __cpuid_count(7, 0, a, b, cx, d);
  c.avx2 = b & (1u << 5);
  if (zmm_state) {
    c.avx512f = b & (1u << 16);
    c.avx512bw = b & (1u << 30);
    c.avx512vl = b & (1u << 31);
    c.avx512_vnni = cx & (1u << 11);
    c.avx512_vbmi = cx & (1u << 1);
  }
  __cpuid_count(7, 1, a, b, cx, d);
  c.avx_vnni = a & (1u << 4);
  if (zmm_state) c.avx512_bf16 = a & (1u << 5);
#endif
  return c;
}

CpuCaps limit_cpu_caps(CpuCaps c, const std::string& level) {
  if (level.empty() || level == "avx512" || level == "native") return c;
  if (level == "avx2") {
    c.avx512f = c.avx512bw = c.avx512vl = c.avx512_vnni = c.avx512_bf16 = c.avx512_vbmi = false;
    return c;
  }
  if (level == "scalar") return CpuCaps{};
  throw_error("unknown CPU level '{}' (expected scalar, avx2 or avx512)", level);
}

const CpuCaps& cpu_caps() {
  static const CpuCaps caps = [] {
    const char* env = std::getenv("TESSERA_CPU_LEVEL");
    return limit_cpu_caps(detect_cpu_caps(), env ? env : "");
  }();
  return caps;
}

}  // namespace tessera::ops
