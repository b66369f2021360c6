# cmake -DNM=<nm> -DLDD=<ldd or empty> -DPLUGIN=<lib.so> -DEXPECTED=<symbol> -P check_exports.cmake
#
# A plugin's dynamic symbol table is its ABI: exactly one defined symbol, the
# entry point, and nothing else (no leaked C++ inline or template symbols that
# could bind to another plugin's copy). Fails with the offending list.
foreach(var NM PLUGIN EXPECTED)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_exports.cmake: -D${var}= is required")
  endif()
endforeach()

execute_process(COMMAND ${NM} -D --defined-only ${PLUGIN}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -D --defined-only ${PLUGIN} failed (${rc}): ${err}")
endif()

# Lines are "<address> <type> <name>[@version]"; keep type and name.
string(REPLACE "\n" ";" lines "${out}")
set(symbols "")
set(entry_type "")
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-fA-F]* *([A-Za-z]) ([^ ]+)$")
    set(type "${CMAKE_MATCH_1}")
    string(REGEX REPLACE "@.*$" "" name "${CMAKE_MATCH_2}")
    list(APPEND symbols "${name}")
    if(name STREQUAL EXPECTED)
      set(entry_type "${type}")
    endif()
  elseif(NOT line STREQUAL "")
    message(FATAL_ERROR "unexpected nm output line: '${line}'")
  endif()
endforeach()

if(NOT symbols STREQUAL EXPECTED)
  message(FATAL_ERROR "${PLUGIN} exports [${symbols}], want exactly [${EXPECTED}]")
endif()
if(NOT entry_type STREQUAL "T")
  message(FATAL_ERROR "${EXPECTED} has nm type '${entry_type}', want a text symbol 'T'")
endif()

# -z defs already refuses undefined symbols at link time; this re-checks the
# built file against the libraries it names as NEEDED, as the loader will.
if(LDD)
  execute_process(COMMAND ${LDD} -r ${PLUGIN}
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR "${out}${err}" MATCHES "undefined symbol|not found")
    message(FATAL_ERROR "${LDD} -r ${PLUGIN} (${rc}):\n${out}${err}")
  endif()
endif()
message(STATUS "${PLUGIN}: exports only ${EXPECTED}")
