# shellcheck shell=bash
# Check helpers of the shell tests (tests/*/*_test.sh), sourced by them:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/../lib/checks.sh"
# Each check prints one line, "ok    DESCRIPTION" or "FAIL  DESCRIPTION", so
# that ctest's output lists every check; $failures counts the failed ones and
# the script must end with a non-zero status when it is not 0.

failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() {
    printf 'FAIL  %s\n' "$*"
    failures=$((failures + 1))
}
# check DESCRIPTION COMMAND...: runs COMMAND; passes when it exits 0.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
