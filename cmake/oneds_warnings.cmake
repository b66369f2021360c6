# Warnings as an INTERFACE target: link it, never set global flags.
add_library(oneds_warnings INTERFACE)
target_compile_options(oneds_warnings INTERFACE
  "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-Wshadow;-Wnon-virtual-dtor;-Wcast-align;-Woverloaded-virtual;-Wformat=2;-Wimplicit-fallthrough>"
  "$<$<COMPILE_LANGUAGE:C>:-Wall;-Wextra;-Wpedantic>"
  "$<$<BOOL:${ONEDS_WARNINGS_AS_ERRORS}>:-Werror>")
add_library(oneds::warnings ALIAS oneds_warnings)
