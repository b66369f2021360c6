# oneds_add_plugin(<target> SOURCES ... [LIBS ...]): a datastore driver plugin,
# lib<target>.so, exporting only oneds_plugin_entry (linker version script) and
# linked with -z defs so that a missing symbol fails the build, not the dlopen.
set(ONEDS_PLUGIN_MAP ${CMAKE_CURRENT_LIST_DIR}/oneds_plugin.map)
function(oneds_add_plugin target)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${target} SHARED ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${ONEDS_PLUGIN_MAP})
  target_compile_definitions(${target} PRIVATE ONEDS_VERSION="${PROJECT_VERSION}")
  target_link_options(${target} PRIVATE -Wl,--version-script=${ONEDS_PLUGIN_MAP} -Wl,-z,defs)
  target_link_libraries(${target} PRIVATE oneds::plugin_runtime oneds::warnings oneds::sanitizers ${P_LIBS})
endfunction()
