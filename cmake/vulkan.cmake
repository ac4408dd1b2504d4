# The Vulkan backend's build: finds glslang and spirv-val (the private lavapipe sysroot of
# scripts/setup_lavapipe.sh, run through scripts/lavapipe.sh, or the system's) and the Vulkan headers,
# compiles shaders/*.comp to SPIR-V (one variant per weight type where a shader has variants), validates
# each with spirv-val and embeds them in tessera_vk_shaders. Without glslang or headers the backend is
# compiled out (TESSERA_HAVE_VULKAN undefined) and its tests report themselves skipped.
option(TESSERA_VULKAN "Build the Vulkan backend (when glslang and the Vulkan headers are found)" ON)
set(TESSERA_HAVE_VULKAN OFF)
if(NOT TESSERA_VULKAN)
  message(STATUS "Vulkan backend: off (TESSERA_VULKAN=OFF)")
  return()
endif()

execute_process(COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/setup_lavapipe.sh --print
                OUTPUT_VARIABLE TESSERA_LAVAPIPE_SYSROOT OUTPUT_STRIP_TRAILING_WHITESPACE)
set(_lvp ${CMAKE_SOURCE_DIR}/scripts/lavapipe.sh)
if(EXISTS ${TESSERA_LAVAPIPE_SYSROOT}/usr/bin/glslang AND EXISTS ${TESSERA_LAVAPIPE_SYSROOT}/usr/include/vulkan/vulkan.h)
  set(TESSERA_GLSLANG bash ${_lvp} glslang)
  set(TESSERA_SPIRV_VAL bash ${_lvp} spirv-val)
  # Only the Vulkan headers of the sysroot, never its libc headers: a folder of links to them.
  set(_inc ${CMAKE_BINARY_DIR}/vk_include)
  file(MAKE_DIRECTORY ${_inc})
  foreach(d vulkan vk_video)
    file(CREATE_LINK ${TESSERA_LAVAPIPE_SYSROOT}/usr/include/${d} ${_inc}/${d} SYMBOLIC)
  endforeach()
  set(TESSERA_VULKAN_INCLUDE ${_inc})
  set(TESSERA_HAVE_LAVAPIPE ON)
else()
  find_program(_glslang NAMES glslang glslangValidator)
  find_program(_spirv_val NAMES spirv-val)
  find_path(_vkh vulkan/vulkan.h)
  if(NOT _glslang OR NOT _spirv_val OR NOT _vkh)
    message(STATUS "Vulkan backend: compiled out (no glslang/spirv-val/Vulkan headers; run scripts/setup_lavapipe.sh)")
    return()
  endif()
  set(TESSERA_GLSLANG ${_glslang})
  set(TESSERA_SPIRV_VAL ${_spirv_val})
  set(TESSERA_VULKAN_INCLUDE ${_vkh})
  set(TESSERA_HAVE_LAVAPIPE OFF)
endif()
set(TESSERA_HAVE_VULKAN ON)
message(STATUS "Vulkan backend: on (glslang: ${TESSERA_GLSLANG}; lavapipe sysroot: ${TESSERA_HAVE_LAVAPIPE})")

# shaders/variants.txt: "<shader> <spirv name> [DEFINE...]" per line.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/shaders/variants.txt)
file(STRINGS ${CMAKE_SOURCE_DIR}/shaders/variants.txt _variants REGEX "^[a-z]")
file(GLOB _common CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/shaders/common/*.glsl)
set(_spv_dir ${CMAKE_BINARY_DIR}/shaders)
file(MAKE_DIRECTORY ${_spv_dir})
set(_spvs)
foreach(line ${_variants})
  string(REPLACE " " ";" parts "${line}")
  list(POP_FRONT parts src name)
  set(defs)
  foreach(d ${parts})
    list(APPEND defs -D${d})
  endforeach()
  set(out ${_spv_dir}/${name}.spv)
  add_custom_command(OUTPUT ${out}
    COMMAND ${TESSERA_GLSLANG} -V --target-env vulkan1.2 -I${CMAKE_SOURCE_DIR}/shaders ${defs}
            -o ${out} ${CMAKE_SOURCE_DIR}/shaders/${src}.comp
    COMMAND ${TESSERA_SPIRV_VAL} --target-env vulkan1.2 ${out}
    DEPENDS ${CMAKE_SOURCE_DIR}/shaders/${src}.comp ${_common} ${CMAKE_SOURCE_DIR}/shaders/variants.txt
    COMMENT "glslang + spirv-val ${name}" VERBATIM)
  list(APPEND _spvs ${out})
endforeach()
set(_embedded ${CMAKE_BINARY_DIR}/shaders/vk_shaders_embedded.cpp)
add_custom_command(OUTPUT ${_embedded}
  COMMAND ${CMAKE_COMMAND} -DOUT=${_embedded} "-DSPVS=${_spvs}" -P ${CMAKE_SOURCE_DIR}/cmake/embed_spirv.cmake
  DEPENDS ${_spvs} ${CMAKE_SOURCE_DIR}/cmake/embed_spirv.cmake COMMENT "embedding SPIR-V" VERBATIM)
add_library(tessera_vk_shaders STATIC ${_embedded})
target_include_directories(tessera_vk_shaders PRIVATE ${CMAKE_SOURCE_DIR})
