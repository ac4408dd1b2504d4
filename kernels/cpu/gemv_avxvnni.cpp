// Fused single-token kernels, AVX2 + AVX-VNNI (vpdpbusd) (see gemv_avx2_body.h).
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemv_avx2_body.h"

namespace tessera::ops {

void gemv_q4_K_avxvnni(const MatmulArgs& a) { gemv_qk45_256<false>(a); }
void gemv_q5_K_avxvnni(const MatmulArgs& a) { gemv_qk45_256<true>(a); }
void gemv_q6_K_avxvnni(const MatmulArgs& a) { gemv_q6k_256(a); }
void gemv_q8_0_avxvnni(const MatmulArgs& a) { gemv_b32_256<GgmlType::Q8_0>(a); }
void gemv_q4_0_avxvnni(const MatmulArgs& a) { gemv_b32_256<GgmlType::Q4_0>(a); }
void gemv_q5_0_avxvnni(const MatmulArgs& a) { gemv_b32_256<GgmlType::Q5_0>(a); }
void gemv_iq4_nl_avxvnni(const MatmulArgs& a) { gemv_b32_256<GgmlType::IQ4_NL>(a); }
void gemv_mxfp4_avxvnni(const MatmulArgs& a) { gemv_b32_256<GgmlType::MXFP4>(a); }

}  // namespace tessera::ops
