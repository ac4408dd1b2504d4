// AVX2 + AVX-VNNI int8 tile GEMM for every quantized type (see gemm_avx2_body.h).
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm_avx2_body.h"

namespace tessera::ops {

void gemm_q8_tiles_avxvnni(const MatmulArgs& a) {
  if (unpack_sub(a.w->type) == 16) gemm_q8_tiles_256<16, 0>(a);
  else gemm_q8_tiles_256<32, 0>(a);
}

}  // namespace tessera::ops
