# The HIP backend's build. Two independent halves:
# - the HIP-on-CPU emulator (kernels/hip/emu, Boost.Context fibers): the `hip-emu` backend and the tests
#   of every HIP kernel; on when Boost.Context is found (TESSERA_HAVE_HIP_EMU);
# - device code objects of kernels/hip/*.hip for the architectures below, compiled by clang-19
#   (-x hip -nogpulib -nogpuinc: no ROCm needed) and embedded in the binary for the `hip` backend, which
#   loads libamdhip64.so with dlopen at run time; on when clang can target amdgcn (TESSERA_HAVE_HIP).
option(TESSERA_HIP "Build the HIP backend (emulator with Boost.Context; code objects when clang targets amdgcn)" ON)
set(TESSERA_HIP_ARCHS gfx1201 gfx1200 gfx1151 gfx1100 CACHE STRING "GPU architectures of the embedded code objects")
set(TESSERA_HAVE_HIP_EMU OFF)
set(TESSERA_HAVE_HIP OFF)
if(NOT TESSERA_HIP)
  message(STATUS "HIP backend: off (TESSERA_HIP=OFF)")
  return()
endif()

find_package(Boost 1.74 QUIET COMPONENTS context)
if(Boost_FOUND)
  set(TESSERA_HAVE_HIP_EMU ON)
else()
  message(STATUS "HIP emulator: compiled out (no Boost.Context: apt-get install libboost-context-dev)")
endif()

find_program(TESSERA_HIP_CLANG NAMES clang++-19 clang++)
if(TESSERA_HIP_CLANG)
  file(WRITE ${CMAKE_BINARY_DIR}/hip_probe.hip "extern \"C\" __attribute__((global)) void probe(int* p) { *p = 1; }\n")
  execute_process(COMMAND ${TESSERA_HIP_CLANG} -x hip --offload-arch=gfx1201 -nogpulib -nogpuinc --cuda-device-only
                          --no-gpu-bundle-output -O3 -c ${CMAKE_BINARY_DIR}/hip_probe.hip -o ${CMAKE_BINARY_DIR}/hip_probe.co
                  RESULT_VARIABLE _hip_rc OUTPUT_QUIET ERROR_QUIET)
  if(_hip_rc EQUAL 0)
    set(TESSERA_HAVE_HIP ON)
  endif()
endif()
message(STATUS "HIP backend: emulator ${TESSERA_HAVE_HIP_EMU}, code objects ${TESSERA_HAVE_HIP} (${TESSERA_HIP_CLANG}: ${TESSERA_HIP_ARCHS})")

# Code objects: kernels/hip/kernels.hip (every kernel) per architecture, with clang's resource-usage
# remarks kept next to each and embedded with it (engine/backend/hip/hip_resources.cpp reads them: the
# budget test and `tessera kernels list --resources`).
if(TESSERA_HAVE_HIP)
  file(GLOB _hip_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/hip/*.hip ${CMAKE_SOURCE_DIR}/kernels/hip/*.h)
  set(_co_dir ${CMAKE_BINARY_DIR}/hip)
  file(MAKE_DIRECTORY ${_co_dir})
  set(TESSERA_HIP_CODE_OBJECTS)
  set(TESSERA_HIP_RESOURCE_FILES)
  foreach(arch ${TESSERA_HIP_ARCHS})
    set(co ${_co_dir}/${arch}.co)
    set(res ${_co_dir}/${arch}.resources.txt)
    add_custom_command(OUTPUT ${co} ${res}
      COMMAND ${CMAKE_COMMAND} -DCLANG=${TESSERA_HIP_CLANG} -DARCH=${arch} -DSRC=${CMAKE_SOURCE_DIR}/kernels/hip/kernels.hip
              -DINC=${CMAKE_SOURCE_DIR} -DOUT=${co} -DRES=${res} -P ${CMAKE_SOURCE_DIR}/cmake/compile_hip.cmake
      DEPENDS ${_hip_srcs} ${CMAKE_SOURCE_DIR}/gguf/half.h ${CMAKE_SOURCE_DIR}/gguf/quant_blocks.h
              ${CMAKE_SOURCE_DIR}/cmake/compile_hip.cmake
      COMMENT "clang -x hip ${arch}" VERBATIM)
    list(APPEND TESSERA_HIP_CODE_OBJECTS ${co})
    list(APPEND TESSERA_HIP_RESOURCE_FILES ${res})
  endforeach()
  set(_hip_embedded ${_co_dir}/hip_code_objects_embedded.cpp)
  add_custom_command(OUTPUT ${_hip_embedded}
    COMMAND ${CMAKE_COMMAND} -DOUT=${_hip_embedded} "-DCOS=${TESSERA_HIP_CODE_OBJECTS}" -P ${CMAKE_SOURCE_DIR}/cmake/embed_hip.cmake
    DEPENDS ${TESSERA_HIP_CODE_OBJECTS} ${TESSERA_HIP_RESOURCE_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed_hip.cmake COMMENT "embedding HIP code objects" VERBATIM)
  add_library(tessera_hip_code_objects STATIC ${_hip_embedded})
  target_include_directories(tessera_hip_code_objects PRIVATE ${CMAKE_SOURCE_DIR})
endif()
