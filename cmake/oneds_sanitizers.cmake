# Sanitizers as an INTERFACE target, switched by ONEDS_ENABLE_ASAN / ONEDS_ENABLE_TSAN
# (docs/sanitizers.md). Every target built here links it, the test programs'
# children (one_ds_host, the fakes) included, so their reports fail the tests too.
add_library(oneds_sanitizers INTERFACE)
if(ONEDS_ENABLE_ASAN AND ONEDS_ENABLE_TSAN)
  message(FATAL_ERROR "ONEDS_ENABLE_ASAN and ONEDS_ENABLE_TSAN cannot be combined")
endif()
if(ONEDS_ENABLE_ASAN)
  # UBSan findings are fatal like ASan's: no "runtime error" line that a test
  # passing anyway would hide. LeakSanitizer is part of ASan on Linux.
  # GCC's -Wmaybe-uninitialized gives false positives on sanitized code (its
  # manual warns of it; std::optional<std::vector> in local_store.cpp); the
  # plain build keeps the warning.
  target_compile_options(oneds_sanitizers INTERFACE -fsanitize=address,undefined
    -fno-sanitize-recover=all -fno-omit-frame-pointer -Wno-maybe-uninitialized)
  target_link_options(oneds_sanitizers INTERFACE -fsanitize=address,undefined
    -fno-sanitize-recover=all)
endif()
if(ONEDS_ENABLE_TSAN)
  # Asio uses atomic_thread_fence, which GCC warns about under TSan.
  target_compile_options(oneds_sanitizers INTERFACE -fsanitize=thread -Wno-tsan -fno-omit-frame-pointer)
  target_link_options(oneds_sanitizers INTERFACE -fsanitize=thread)
endif()
add_library(oneds::sanitizers ALIAS oneds_sanitizers)

# ONEDS_BUILD_FUZZERS: all code (the project's and header-only code it
# instantiates) gets libFuzzer's coverage hooks, ASan and UBSan; UBSan stops
# at the first report so that the fuzzer sees it. The fuzz targets themselves
# link -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt).
if(ONEDS_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "ONEDS_BUILD_FUZZERS needs clang (CC=clang CXX=clang++), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(ONEDS_ENABLE_ASAN OR ONEDS_ENABLE_TSAN)
    message(FATAL_ERROR "ONEDS_BUILD_FUZZERS brings its own sanitizers; leave ONEDS_ENABLE_ASAN/TSAN off")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
