#!/bin/bash
# A writeback error is never acknowledged (issue 10, item 1).
#
# The spool is an ext4 file system on a loop device whose backing file
# lives on a small tmpfs.  The image is sparse, so once the tmpfs is full
# the loop device fails the writes of new data blocks (EIO/ENOSPC at
# writeback) while write() into the page cache still succeeds: only the
# sync of a message's own file can tell.  8 clients send 30 messages each
# (SES down, so everything stays queued); then the tmpfs is grown, the
# spool unmounted and mounted again (nothing comes from the page cache any
# more) and SES comes back: every message that got 250 must be a whole
# message on disk and arrive byte for byte.  With the old syncfs() group
# commit one worker's syncfs() consumed another batch's error and some
# acknowledged messages were zeros on disk.
# Needs root, tmpfs, loop devices and mkfs.ext4; skipped otherwise.
. "$(dirname "$0")/lib.sh"

backing=$work/backing
spool=$work/spool
loopdev=
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (tmpfs and loop device mounts)"
for tool in losetup mkfs.ext4 mount umount; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool missing"
done
mkdir -p "$backing" "$spool"

unmount_all() {
	mountpoint -q "$spool" && umount "$spool"
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	mountpoint -q "$backing" && umount "$backing"
	return 0
}
# Before lib.sh's own cleanup kills the daemon: lazy unmounts then.
teardown() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	unmount_all || true
	mountpoint -q "$spool" && umount -l "$spool"
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	mountpoint -q "$backing" && umount -l "$backing"
	return 0
}
extra_cleanup=teardown

mount -t tmpfs -o size=64m,mode=0700 tmpfs "$backing" 2>/dev/null ||
	skip "cannot mount a tmpfs"
truncate -s 256M "$backing/disk.img"
loopdev=$(losetup -f --show "$backing/disk.img" 2>/dev/null) ||
	skip "no loop device available (losetup -f failed)"
# The loop driver counts a short write to its backing file as done: a
# request that finds room on the tmpfs for only part of its pages
# "succeeds" and the rest is silently lost, which no program can detect.
# Requests of one page each (4 KiB blocks, 4 KiB requests) either fit
# or fail, and a failure reaches the file system as an I/O error.
echo 4 >"/sys/block/${loopdev#/dev/}/queue/max_sectors_kb" ||
	skip "cannot limit $loopdev to 4 KiB requests"
# Every metadata block written now (no lazy init in the background
# later), so that what fills the tmpfs is message data.
mkfs.ext4 -q -F -b 4096 -N 4096 -E lazy_itable_init=0,lazy_journal_init=0 "$loopdev" ||
	skip "mkfs.ext4 failed on $loopdev"
mount "$loopdev" "$spool" || skip "cannot mount $loopdev"
chmod 700 "$spool"
# Room on the tmpfs for about 6 MiB more: a quarter of the 240 messages
# of 100 KiB; the rest fails at writeback.
used_kb=$(df -k --output=used "$backing" | tail -1)
mount -o remount,size=$((used_kb + 6144))k "$backing" ||
	skip "cannot resize the tmpfs"

start_fake starttls
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null	# SES down: mail stays queued
EXTRA_CONF='spool_min_free = 0;'
write_conf
start_daemon
: >"$work/acked"
smtpload --port "$SMTP_PORT" --count 240 --concurrency 8 --size 102400 \
	--per-connection 5 --messages "$work/sent" --acked "$work/acked" \
	--tolerate-errors >"$work/load.out" 2>&1
acked=$(wc -l <"$work/acked")
echo "acknowledged: $acked of 240"
kill9_daemon
check "the backing store filled up: some messages were refused" [ "$acked" -lt 240 ]
check "some messages were acknowledged before it did" [ "$acked" -gt 0 ]
check "refusals were temporary (4xx), never 5xx" \
	bash -c "! grep -q \"(5[0-9][0-9],\" '$work/load.out'"

# Read back from the device, not from the page cache.
mount -o remount,size=512m "$backing"
umount "$spool"
mount "$loopdev" "$spool"
queued=$(spool_count)
echo "queue/ holds $queued files"
zeroed=0
for f in "$spool"/queue/*; do
	[ -f "$f" ] || continue
	[ "$(head -c 9 "$f" | tr '\0' '@')" = "SESRELAY " ] || zeroed=$((zeroed + 1))
done
echo "files in queue/ that are not a message (zeroed): $zeroed"
check "no file in queue/ is zeros or garbage" [ "$zeroed" -eq 0 ]
check "every acknowledged message has its file in queue/" [ "$queued" -ge "$acked" ]

start_fake starttls
write_conf
start_daemon
wait_delivered "$acked" 30
check "every acknowledged message arrived, byte for byte" \
	verify --record "$FAKE_REC" --messages "$work/sent" --expect-ids "$work/acked" \
	--allow-extra
check "nothing was quarantined" [ "$(ls "$spool/corrupt" | wc -l)" -eq 0 ]
cp -a "$spool/corrupt" "$work/corrupt"	# kept with $work when a check failed
stop_daemon
finish
