# Kernel micro-benchmarks (included from bench/CMakeLists.txt): every registered matmul kernel, and the
# attention and activation-quantization kernels, on real Qwen3-30B-A3B shapes. Run: build/bench/tessera_bench_kernels [--benchmark_filter=...]
if(TESSERA_BENCH)
  add_executable(tessera_bench_kernels ${CMAKE_CURRENT_LIST_DIR}/bench_kernels.cpp)
  target_link_libraries(tessera_bench_kernels PRIVATE tessera_engine tessera_testdata benchmark::benchmark)
endif()
