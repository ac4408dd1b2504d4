// Every HIP kernel in one translation unit: compiled by clang -x hip into one code object per GPU
// architecture (cmake/hip.cmake), and as C++ against the emulator for `hip-emu` (kernels/hip/CMakeLists.txt).
#include "kernels/hip/attention.hip"
#include "kernels/hip/elementwise.hip"
#include "kernels/hip/matmul.hip"
#include "kernels/hip/matmul_wmma.hip"
#include "kernels/hip/route.hip"
#include "kernels/hip/fused.hip"  // after the files whose helpers it uses

#if !defined(TESSERA_HIP_DEVICE)
// Referenced by the hip-emu backend so that the linker keeps this file (and its kernels' registrations).
namespace tessera::hip {
int emu_kernels_linked() { return 1; }
}  // namespace tessera::hip
#endif
