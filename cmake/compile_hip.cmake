# cmake -DCLANG= -DARCH= -DSRC= -DINC= -DOUT= -DRES= -P compile_hip.cmake: one code object for one GPU
# architecture, and clang's kernel-resource-usage remarks in RES (the build fails on any other output).
execute_process(
  COMMAND ${CLANG} -x hip --offload-arch=${ARCH} -nogpulib -nogpuinc --cuda-device-only --no-gpu-bundle-output
          -O3 -std=c++20 -I${INC} -Rpass-analysis=kernel-resource-usage -c ${SRC} -o ${OUT}
  RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang -x hip ${ARCH} failed:\n${err}")
endif()
string(REGEX MATCHALL "remark: [^\n]*" remarks "${err}")
set(text "")
foreach(r ${remarks})
  string(REGEX REPLACE "remark: +(.*) \\[-Rpass-analysis=kernel-resource-usage\\]" "\\1" r "${r}")
  string(APPEND text "${r}\n")
endforeach()
string(FIND "${err}" "warning:" has_warning)
if(NOT has_warning EQUAL -1)
  message(FATAL_ERROR "clang -x hip ${ARCH}: warnings:\n${err}")
endif()
file(WRITE ${RES} "${text}")
