// What the CPU we run on can execute (cpuid + OS register-state support), detected once at run time.
#pragma once
#include <string>

namespace tessera::ops {

struct CpuCaps {
  bool avx2 = false, fma = false, f16c = false, avx_vnni = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false, avx512_bf16 = false;
  bool avx512_vbmi = false;

  // The kernel families this machine runs.
  bool has_avx2() const { return avx2 && fma && f16c; }
  bool has_avx512() const { return avx512f && avx512bw && avx512vl && avx512_vnni && fma && f16c; }
  std::string describe() const;  // e.g. "avx2 fma f16c avx512f ..."
};

// Detects the features of this CPU (no masking).
CpuCaps detect_cpu_caps();

// The capabilities kernels are chosen by: detect_cpu_caps() limited by the environment variable
// TESSERA_CPU_LEVEL ("scalar", "avx2" or "avx512"; unset = everything detected). Read once.
const CpuCaps& cpu_caps();

// Limits a set of capabilities to a level name as above; throws tessera::Error for an unknown name.
CpuCaps limit_cpu_caps(CpuCaps caps, const std::string& level);

}  // namespace tessera::ops
