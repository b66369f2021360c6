# Warnings as an INTERFACE target: link it, never set global flags.
add_library(oneds_warnings INTERFACE)
target_compile_options(oneds_warnings INTERFACE
  "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-Wshadow;-Wnon-virtual-dtor;-Wcast-align;-Woverloaded-virtual;-Wformat=2;-Wimplicit-fallthrough>"
  "$<$<COMPILE_LANGUAGE:C>:-Wall;-Wextra;-Wpedantic>"
  "$<$<BOOL:${ONEDS_WARNINGS_AS_ERRORS}>:-Werror>")
# GCC 12 at -O3 reports -Wrestrict for std::string concatenations inside
# libstdc++ itself (GCC bugs 105329 and 105651, fixed in GCC 13): false
# positives in our code and in Boost.Test's, so the check is off for GCC 12.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(oneds_warnings INTERFACE "$<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>")
endif()
add_library(oneds::warnings ALIAS oneds_warnings)
