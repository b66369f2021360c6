# Read from the action table (plugin/restic/actions/actions.def), so that the
# installed scripts and the plugin's action list cannot drift apart:
#   ONEDS_RESTIC_ACTIONS      every remotes/datastore/restic/<name> wrapper
#   ONEDS_RESTIC_RUNS         those of actions the plugin runs
#   ONEDS_RESTIC_UNSUPPORTED  those of the stock stubs ("Operation not supported")
set(ONEDS_ACTIONS_DEF ${PROJECT_SOURCE_DIR}/plugin/restic/actions/actions.def)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ONEDS_ACTIONS_DEF})
file(STRINGS ${ONEDS_ACTIONS_DEF} _oneds_action_lines REGEX "^ONEDS_(ACTION|UNSUPPORTED)\\(")
set(ONEDS_RESTIC_RUNS)
set(ONEDS_RESTIC_UNSUPPORTED)
foreach(_line ${_oneds_action_lines})
  if(_line MATCHES "^ONEDS_ACTION\\(([a-z_]+), *[a-z_]+, *[a-z_]+, *(yes|no)\\)$")
    if(CMAKE_MATCH_2 STREQUAL "yes")
      list(APPEND ONEDS_RESTIC_RUNS ${CMAKE_MATCH_1})
    endif()
  elseif(_line MATCHES "^ONEDS_UNSUPPORTED\\(([a-z_]+)\\)$")
    list(APPEND ONEDS_RESTIC_UNSUPPORTED ${CMAKE_MATCH_1})
  else()
    message(FATAL_ERROR "${ONEDS_ACTIONS_DEF}: cannot read the line '${_line}'")
  endif()
endforeach()
set(ONEDS_RESTIC_ACTIONS ${ONEDS_RESTIC_RUNS} ${ONEDS_RESTIC_UNSUPPORTED})
