# Scheduler benchmarks (included from bench/CMakeLists.txt): FIM prefix-cache workload and batched
# decode throughput. Run: build/bench/tessera_bench_sched -m MODEL; a quick smoke run on the tiny
# golden model is a ctest.
if(TESSERA_BENCH)
  add_executable(tessera_bench_sched ${CMAKE_CURRENT_LIST_DIR}/bench_sched.cpp)
  target_link_libraries(tessera_bench_sched PRIVATE tessera_engine tessera_cli)
  if(TESSERA_TESTS)
    add_test(NAME bench_sched_smoke
             COMMAND tessera_bench_sched -m ${TESSERA_GOLDEN_DIR}/models/tiny-q8_0.gguf -t 1 --fim-prompt 200
                     --fim-requests 4 --gen 4 --seqs 1,4 --decode-steps 4)
    set_tests_properties(bench_sched_smoke PROPERTIES TIMEOUT 120)
  endif()
endif()
