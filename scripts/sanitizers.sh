# Sourced by bootstrap.sh, test.sh and ci_tsan.sh (docs/sanitizers.md).
# ONEDS_SANITIZE selects the build: unset or empty, a plain one; "address",
# ASan+UBSan (ASan's LeakSanitizer included); "thread", TSan.

oneds_sanitize=${ONEDS_SANITIZE:-}
case "$oneds_sanitize" in
  "") oneds_sanitize_cmake_args=(-DONEDS_ENABLE_ASAN=OFF -DONEDS_ENABLE_TSAN=OFF)
      oneds_default_build_dir=build ;;
  address) oneds_sanitize_cmake_args=(-DONEDS_ENABLE_ASAN=ON -DONEDS_ENABLE_TSAN=OFF)
      oneds_default_build_dir=build-asan ;;
  thread) oneds_sanitize_cmake_args=(-DONEDS_ENABLE_ASAN=OFF -DONEDS_ENABLE_TSAN=ON)
      oneds_default_build_dir=build-tsan ;;
  *) echo "ONEDS_SANITIZE must be empty, 'address' or 'thread', not '$oneds_sanitize'" >&2
     exit 2 ;;
esac
# Sanitized builds compile at -O1 with line tables only (-g1): half the
# compiler's time of -O2 -g on this code, still symbolized stacks with file
# and line, and the optimisation level the sanitizers' documentation advises.
if [ -n "$oneds_sanitize" ]; then
  oneds_sanitize_cmake_args+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
                              "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
fi

# oneds_sanitizer_env: exports the runtime options for everything the tests
# start (the test programs and their children: one_ds_host, the fakes), which
# inherit the environment. Every report goes to a file in a fresh directory
# ($oneds_sanitizer_log_dir) instead of stderr, where a test that captures a
# child's stderr, or expects the child to fail, would hide it;
# oneds_sanitizer_check_logs fails the run on any report found there.
# A process with a finding still stops with a non-zero status at once (ASan
# always, UBSan by -fno-sanitize-recover=all, TSan by halt_on_error), so the
# test that saw it fails too.
oneds_sanitizer_env() {
  [ -n "$oneds_sanitize" ] || return 0
  local root supp
  root=$(pwd)
  supp="$root/tests/sanitizers"
  oneds_sanitizer_log_dir=$(mktemp -d "${TMPDIR:-/tmp}/oneds-sanitizer.XXXXXX")
  local common="log_path=$oneds_sanitizer_log_dir/report:log_exe_name=1:print_stacktrace=1"
  common+=":halt_on_error=1:handle_abort=1"
  if [ "$oneds_sanitize" = address ]; then
    export ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1"
    export UBSAN_OPTIONS="$common"
    export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  else
    export TSAN_OPTIONS="$common:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  fi
}

# oneds_sanitizer_check_logs: prints every report written and returns 1 when
# there is one; removes the directory.
oneds_sanitizer_check_logs() {
  [ -n "$oneds_sanitize" ] || return 0
  local rc=0 f
  for f in "$oneds_sanitizer_log_dir"/*; do
    [ -e "$f" ] || continue
    rc=1
    echo "=== sanitizer report $(basename "$f") ===" >&2
    cat "$f" >&2
  done
  rm -rf "$oneds_sanitizer_log_dir"
  if ((rc)); then
    echo "sanitizers: the reports above came from the test programs or their children" >&2
  fi
  return $rc
}
