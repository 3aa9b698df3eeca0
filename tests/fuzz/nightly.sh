#!/bin/bash
# nightly.sh: every fuzz target for several minutes (FUZZ_SECONDS, default
# 300 each), one after the other, then a summary: per target its runs,
# executions per second, coverage (libFuzzer's cov and ft) or the input
# that failed.  Exits 1 if any target failed, 77 as run.sh does when
# clang or libFuzzer is missing.
#
# It is run.sh with longer runs: the same build, seeds, crash-* replay
# and clean-up.  FUZZ_CORPUS=DIR keeps each target's grown corpus in
# DIR/<name>/ from one night to the next (not in the source tree: only
# small seeds that reach new code belong in corpus/, see README).
#
#   tests/fuzz/nightly.sh                            # ~50 min, 10 targets
#   FUZZ_SECONDS=600 FUZZ_CORPUS=/var/tmp/sesrelay-fuzz tests/fuzz/nightly.sh
#   FUZZ_TARGETS="pickup smtp_session" tests/fuzz/nightly.sh
#
# Each target takes a whole core: on a shared machine run it niced.
set -u

here=$(cd "$(dirname "$0")" && pwd)
export FUZZ_SECONDS=${FUZZ_SECONDS:-300}
out=$(mktemp "${TMPDIR:-/tmp}/sesrelay-nightly.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT

start=$(date +%s)
"$here/run.sh" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
elapsed=$(($(date +%s) - start))

echo
echo "# nightly fuzz summary: FUZZ_SECONDS=$FUZZ_SECONDS, ${elapsed}s in all"
grep -E '^(ok|not ok) - fuzz ' "$out" | sed 's/^/#   /'
case $rc in
0) echo "# all targets passed" ;;
77) echo "# skipped: $(grep '^SKIP' "$out" | head -n 1)" ;;
*) echo "# FAILED: see the reports above; inputs kept under fuzz-crashes/" ;;
esac
exit "$rc"
