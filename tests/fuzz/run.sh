#!/bin/bash
# run.sh: build the libFuzzer targets against the real src/*.c and fuzz
# each one briefly, starting from its seed corpus in tests/fuzz/corpus/.
#
# Usable as a test: prints "ok - fuzz <name>: N runs, no crash" or
# "not ok - fuzz <name>: ..." per target, exits 1 if any target crashed
# (the crashing input is kept and its path printed), 77 if clang or the
# libFuzzer runtime is missing.  Builds in a scratch directory under
# $top_builddir (else <srcdir>/build-fuzz), never writes to the source
# tree, runs one fuzzer at a time and leaves no process behind.
#
# A seed named crash-* is an input that once crashed src/: it is replayed
# alone first ("not ok" while it still crashes) and kept out of the
# fuzzing corpus until it does not, so the fuzzing still runs.
#
# Environment: FUZZ_SECONDS (default 10) per target; FUZZ_TARGETS to run
# only some ("headers dotstuff"); KEEP=1 keeps the scratch directory;
# FUZZ_CC another clang; FUZZ_CORPUS=DIR adds DIR/<name>/ to the seeds
# and keeps the grown corpus there (nightly.sh).  The targets that run a
# spool get a scratch directory on /dev/shm (else under the build
# directory), removed at the end.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
top_srcdir=$(cd "$top_srcdir" && pwd)
seconds=${FUZZ_SECONDS:-10}
all_targets="smtp_command dotstuff spool_message headers upstream_reply cleanup aws_json"
# These two run the daemon's event loop on a scratch spool (fuzz_scratch.h).
all_targets="$all_targets maildrop pickup smtp_session"
targets=${FUZZ_TARGETS:-$all_targets}
# Every src/ file but the three programs' mains: they go into one
# archive, so each target links only the objects it uses (pickup and the
# SMTP server need a good part of the daemon).
sources=
for s in "$top_srcdir"/src/*.c; do
	s=${s##*/}
	case $s in
	sesrelayd.c|sesrelayctl.c|sesrelay-sendmail.c) ;;
	*) sources="$sources ${s%.c}" ;;
	esac
done
# libidn2: smtp_parse.c converts IDN domains.
pkgs_cflags="libevent_core libconfig openssl libidn2"
pkgs_libs="libevent_core libevent_extra libevent_openssl libconfig openssl libidn2"

skip() { echo "SKIP: $*"; exit 77; }

# The fuzzers build with their own sanitizers: one run per suite is enough.
[ -z "${SESRELAY_SKIP_FUZZ:-}" ] || skip "SESRELAY_SKIP_FUZZ is set"

# Debian's clang package gives "clang"; clang-14 alone gives "clang-14".
cc=${FUZZ_CC:-}
[ -n "$cc" ] || cc=$(command -v clang || command -v clang-14) ||
    skip "clang missing"
command -v pkg-config >/dev/null 2>&1 || skip "pkg-config missing"
# shellcheck disable=SC2086
pkg-config --exists $pkgs_libs || skip "development packages missing ($pkgs_libs)"
case $seconds in
# 0 would be -max_total_time=0: no limit.
''|*[!0-9]*|0) echo "not ok - fuzz: FUZZ_SECONDS=$seconds is not a positive number"; exit 1 ;;
esac

if [ -n "${top_builddir:-}" ]; then
	base=$(cd "$top_builddir" && pwd) || exit 1
else
	base=$top_srcdir/build-fuzz
fi
made_base=
[ -d "$base" ] || { mkdir -p "$base" && made_base=1; } || exit 1
work=$(mktemp -d "$base/fuzz.XXXXXX") || exit 1
# The spool of fuzz_pickup and fuzz_smtp_session: a tmpfs keeps their
# fsyncs cheap.  Removed here even when a target crashed.
FUZZ_SCRATCH=$(mktemp -d /dev/shm/sesrelay-fuzz.XXXXXX 2>/dev/null) ||
    FUZZ_SCRATCH=$(mkdir "$work/scratch" && echo "$work/scratch") || exit 1
export FUZZ_SCRATCH
# Crashing inputs outlive the scratch directory.
keep_dir=$base/fuzz-crashes

child=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	local rc=$?
	if [ -n "$child" ]; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	rm -rf "$FUZZ_SCRATCH"
	if [ -n "${KEEP:-}" ]; then
		echo "# kept $work"
	else
		rm -rf "$work"
		[ -n "$made_base" ] && rmdir "$base" 2>/dev/null
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "not ok - fuzz: interrupted"; exit 1' HUP INT TERM

# config.h: the configured one, else the minimum the sources need.
if [ -n "${top_builddir:-}" ] && [ -f "$base/config.h" ]; then
	config_dir=$base
else
	config_dir=$work/include
	mkdir -p "$config_dir"
	printf '#define _GNU_SOURCE 1\n#define PACKAGE_VERSION "fuzz"\n' \
	    >"$config_dir/config.h"
fi

# Is the libFuzzer runtime there?  Link an empty target to find out.
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
    >"$work/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" \
    >"$work/probe.log" 2>&1 || skip "clang cannot link -fsanitize=fuzzer (libclang_rt.fuzzer missing?)"

# UB aborts, so the fuzzer keeps the input, whoever runs the binary.
# shellcheck disable=SC2086  # the package lists are word lists
cflags="-std=gnu11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -I$config_dir -I$top_srcdir/src
    -DSESRELAY_CONF_FILE=\"/etc/sesrelay/sesrelay.conf\"
    $(pkg-config --cflags $pkgs_cflags)"
ldflags="-fsanitize=fuzzer,address,undefined"
# shellcheck disable=SC2086
libs="$(pkg-config --libs $pkgs_libs) -lpthread"

failures=0
not_ok() { echo "not ok - fuzz $*"; failures=$((failures + 1)); }

mkdir -p "$work/obj" "$work/bin"
objs=
for s in $sources; do
	# shellcheck disable=SC2086
	if ! "$cc" $cflags -c "$top_srcdir/src/$s.c" -o "$work/obj/$s.o" \
	    >"$work/obj/$s.log" 2>&1; then
		not_ok "build: src/$s.c does not compile"
		sed 's/^/# /' "$work/obj/$s.log" | tail -n 20
		exit 1
	fi
	objs="$objs $work/obj/$s.o"
done
# shellcheck disable=SC2086
ar rcs "$work/libfuzzsrc.a" $objs || exit 1

# build NAME: compile and link tests/fuzz/fuzz_NAME.c; 0 or 1.
build() {
	local name=$1 log=$work/bin/$1.log
	# shellcheck disable=SC2086
	"$cc" $cflags -Wall -Wextra -I"$here" -c "$here/fuzz_$name.c" \
	    -o "$work/bin/fuzz_$name.o" >"$log" 2>&1 &&
	"$cc" $ldflags "$work/bin/fuzz_$name.o" "$work/libfuzzsrc.a" $libs \
	    -o "$work/bin/fuzz_$name" >>"$log" 2>&1 && return 0
	not_ok "$name: does not build"
	sed 's/^/# /' "$log" | tail -n 20
	return 1
}

# start_fuzzer NAME LOG ARGS...: run a target in the background (so the
# traps can stop it; timeout(1) in case it ignores -max_total_time) and
# wait for it.  Returns its exit status.
start_fuzzer() {
	local name=$1 log=$2 rc
	shift 2
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	timeout -k 10 $((seconds + 120)) "$work/bin/fuzz_$name" \
	    -timeout=10 -rss_limit_mb=1024 \
	    -artifact_prefix="$work/art/$name/" "$@" </dev/null >"$log" 2>&1 &
	child=$!
	wait "$child"
	rc=$?
	child=
	return "$rc"
}

# report_crash NAME LOG RC WHAT: keep the input, say where, show the report.
report_crash() {
	local name=$1 log=$2 rc=$3 what=$4 art kept
	# shellcheck disable=SC2012  # libFuzzer names them crash-<sha1>
	art=$(ls "$work/art/$name/" 2>/dev/null | head -n 1)
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		not_ok "$name: $what, still running after $((seconds + 120))s, stopped"
	elif [ -z "$art" ]; then
		not_ok "$name: $what"
	else
		mkdir -p "$keep_dir/$name"
		kept=$keep_dir/$name/$art
		cp "$work/art/$name/$art" "$kept"
		rm -f "$work/art/$name/$art"
		not_ok "$name: ${art%%-*} $what, input kept at $kept"
	fi
	echo "# --- $name: the sanitizer's report ---"
	report_tail "$log" | sed 's/^/# /'
}

# report_tail LOG: the report from its first error line, without the
# shadow-memory dump, at most 40 lines, then the input's dump.
report_tail() {
	awk '
	/^Shadow bytes around/ { skip = 1 }
	skip && /ABORTING/ { skip = 0 }
	skip { next }
	!on && /ERROR|runtime error|invariant failed|DEADLYSIGNAL/ { on = 1 }
	on && n < 40 && !/^MS:|^0x|^artifact_prefix|^Base64|^stat::/ {
		print; n++
	}
	/^Base64/ { print }' "$1"
}

# stats LOG: ", N/s, cov C ft F" from libFuzzer's last status line.
stats() {
	awk '
	/^stat::average_exec_per_sec:/ { rate = $2 }
	/ cov: / { for (i = 1; i < NF; i++) {
		if ($i == "cov:") cov = $(i + 1)
		if ($i == "ft:") ft = $(i + 1) } }
	END { if (rate != "") printf ", %s/s", rate
		if (cov != "") printf ", cov %s ft %s", cov, ft }' "$1"
}

# replay NAME: each known crash-* seed once.  One that still crashes is a
# failure and stays out of the fuzzing corpus (it would stop the run).
replay() {
	local name=$1 seed rel rc
	for seed in "$here/corpus/$name"/crash-*; do
		[ -f "$seed" ] || continue
		rel=${seed#"$top_srcdir"/}
		start_fuzzer "$name" "$work/$name.replay.log" "$seed"
		rc=$?
		if [ "$rc" -eq 0 ]; then
			echo "ok - fuzz $name: $rel no longer crashes"
			cp "$seed" "$work/corpus/$name/"
		else
			# Run as a file argument, libFuzzer writes no copy.
			rm -f "$work/art/$name"/*
			report_crash "$name" "$work/$name.replay.log" "$rc" \
			    "the known input $rel still crashes"
		fi
	done
}

# fuzz NAME: run it over a scratch copy of its seeds for $seconds.
fuzz() {
	local name=$1 max_len=4096 corpus=$work/corpus/$1 log=$work/$1.log
	local rc runs seed dict=()

	[ "$name" = spool_message ] && max_len=65536
	[ -f "$here/$name.dict" ] && dict=(-dict="$here/$name.dict")
	mkdir -p "$corpus" "$work/art/$name"
	for seed in "$here/corpus/$name"/* ${FUZZ_CORPUS:+"$FUZZ_CORPUS/$name"/*}; do
		case ${seed##*/} in
		crash-*) ;;
		*) [ -f "$seed" ] && cp "$seed" "$corpus/" ;;
		esac
	done
	replay "$name"
	start_fuzzer "$name" "$log" -max_total_time="$seconds" \
	    -max_len="$max_len" -print_final_stats=1 "${dict[@]}" "$corpus"
	rc=$?
	runs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
	if [ -n "${FUZZ_CORPUS:-}" ]; then
		mkdir -p "$FUZZ_CORPUS/$name" &&
		cp -n "$corpus"/* "$FUZZ_CORPUS/$name/" 2>/dev/null
	fi
	if [ "$rc" -eq 0 ] && [ -z "$(ls "$work/art/$name/")" ]; then
		echo "ok - fuzz $name: ${runs:-?} runs, no crash$(stats "$log")"
	else
		report_crash "$name" "$log" "$rc" "after ${runs:-?} runs"
	fi
}

for name in $targets; do
	case " $all_targets " in
	*" $name "*) ;;
	*) not_ok "$name: no such target"; continue ;;
	esac
	build "$name" && fuzz "$name"
done
[ "$failures" -eq 0 ] && exit 0
echo "# $failures fuzz target(s) failed"
exit 1
