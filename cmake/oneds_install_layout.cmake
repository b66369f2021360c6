# Where `cmake --install` puts things, relative to the install prefix.
#   system          (default) prefix "/" gives OpenNebula's packaged paths:
#                   /usr/lib/one/mads, /var/lib/one/remotes, /etc/one
#   self-contained  prefix "$ONE_LOCATION" gives a self-contained install:
#                   $ONE_LOCATION/lib/mads, $ONE_LOCATION/var/remotes, $ONE_LOCATION/etc
set(ONEDS_INSTALL_LAYOUT "system" CACHE STRING "system or self-contained")
set_property(CACHE ONEDS_INSTALL_LAYOUT PROPERTY STRINGS system self-contained)
if(ONEDS_INSTALL_LAYOUT STREQUAL "system")
  set(ONEDS_MADS_DIR "usr/lib/one/mads")
  set(ONEDS_REMOTES_DIR "var/lib/one/remotes")
  set(ONEDS_SYSCONF_DIR "etc/one")
elseif(ONEDS_INSTALL_LAYOUT STREQUAL "self-contained")
  set(ONEDS_MADS_DIR "lib/mads")
  set(ONEDS_REMOTES_DIR "var/remotes")
  set(ONEDS_SYSCONF_DIR "etc")
else()
  message(FATAL_ERROR "ONEDS_INSTALL_LAYOUT must be 'system' or 'self-contained', not '${ONEDS_INSTALL_LAYOUT}'")
endif()

# Host and plugins share one output directory in the build tree, so the host
# finds libone_ds_<name>.so beside itself without installing.
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
set(CMAKE_LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
