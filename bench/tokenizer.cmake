# Tokenizer throughput benchmark (included from bench/CMakeLists.txt).
if(TESSERA_BENCH)
  add_executable(bench_tokenizer ${CMAKE_CURRENT_LIST_DIR}/bench_tokenizer.cpp)
  target_link_libraries(bench_tokenizer PRIVATE tessera_tokenizer benchmark::benchmark)
  target_compile_definitions(bench_tokenizer PRIVATE TESSERA_GOLDEN_DIR="${TESSERA_GOLDEN_DIR}")
endif()
