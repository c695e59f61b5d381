#!/usr/bin/env bash
# The README's CLI tour, as a test: create a topic, produce lines, consume them back in a
# group, describe the group's lag, reset its offsets and read everything again.
# Needs SLUICE (the binary) and BOOTSTRAP (host:port of a running broker); run by
# tests/cli_tour.rs. Every step checks its output; the first failure exits non-zero.
set -euo pipefail
: "${SLUICE:?path of the sluice binary}" "${BOOTSTRAP:?host:port of a broker}"
sluice() { "$SLUICE" "$@"; }
B=(--bootstrap-server "$BOOTSTRAP")
fail() { echo "tour: $*" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== topics create / list / describe"
sluice topics create "${B[@]}" --topic tour --partitions 3 --replication-factor 1 --config retention.ms=3600000
sluice topics list "${B[@]}" | grep -qx tour || fail "tour is not listed"
sluice topics describe "${B[@]}" --topic tour | tee "$work/describe"
grep -q "PartitionCount: 3" "$work/describe" || fail "describe: not 3 partitions"
grep -q "retention.ms=3600000" "$work/describe" || fail "describe: the topic config is missing"
# Creating it again is an error a script can see (exit 1), unless --if-not-exists.
if sluice topics create "${B[@]}" --topic tour --partitions 3 2>"$work/err"; then
  fail "a second create succeeded"
fi
grep -q "TOPIC_ALREADY_EXISTS" "$work/err" || fail "the error does not say why: $(cat "$work/err")"
sluice topics create "${B[@]}" --topic tour --partitions 3 --if-not-exists

echo "== produce (key:value lines from stdin)"
for i in $(seq 1 30); do echo "key$i:value $i"; done > "$work/lines"
sluice produce "${B[@]}" --topic tour --key-separator : < "$work/lines"

echo "== consume in a group"
sluice consume "${B[@]}" --topic tour --group tour-group --from-beginning \
  --max-messages 30 --format '%k:%v' > "$work/consumed"
sort "$work/lines" > "$work/expected"
sort "$work/consumed" | diff - "$work/expected" || fail "consumed lines differ from the produced ones"

echo "== groups list / describe"
sluice groups list "${B[@]}" | grep -qx tour-group || fail "tour-group is not listed"
sluice groups describe "${B[@]}" --group tour-group | tee "$work/lag"
# Columns: GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
awk -F'\t' '$1 == "tour-group" { n++; cur += $4; lag += $6 } END { exit !(n == 3 && cur == 30 && lag == 0) }' "$work/lag" \
  || fail "describe: expected 3 partitions, 30 consumed, lag 0"

echo "== reset offsets to earliest (dry run, then --execute)"
sluice groups reset-offsets "${B[@]}" --group tour-group --topic tour --to-earliest > "$work/plan"
sluice groups describe "${B[@]}" --group tour-group > "$work/lag"
awk -F'\t' '$1 == "tour-group" { lag += $6 } END { exit !(lag == 0) }' "$work/lag" || fail "a dry run changed the offsets"
sluice groups reset-offsets "${B[@]}" --group tour-group --topic tour --to-earliest --execute
sluice groups describe "${B[@]}" --group tour-group > "$work/lag"
awk -F'\t' '$1 == "tour-group" { lag += $6 } END { exit !(lag == 30) }' "$work/lag" || fail "after the reset the lag is not 30"
sluice consume "${B[@]}" --topic tour --group tour-group --max-messages 30 --format '%k:%v' \
  | sort | diff - "$work/expected" || fail "after the reset the group did not read everything again"

echo "== partition and offset"
sluice consume "${B[@]}" --topic tour --partition 0 --offset earliest --timeout-ms 1000 --format '%p %o' > "$work/p0"
[ -s "$work/p0" ] && ! grep -qv '^0 ' "$work/p0" || fail "--partition 0 printed other partitions"

echo "== produce --file --partition; consume --partition --offset N; reset to an offset / a time"
sluice topics create "${B[@]}" --topic tour2 --partitions 2
printf 'x1\nx2\nx3\n' > "$work/file"
sluice produce "${B[@]}" --topic tour2 --file "$work/file" --partition 1 --compression-codec zstd --acks all
sluice consume "${B[@]}" --topic tour2 --partition 1 --offset 1 --max-messages 2 --format '%o:%v' > "$work/out"
[ "$(cat "$work/out")" = "$(printf '1:x2\n2:x3')" ] || fail "--offset 1 printed: $(cat "$work/out")"
sluice consume "${B[@]}" --topic tour2 --group g2 --from-beginning --max-messages 3 > /dev/null
sluice groups reset-offsets "${B[@]}" --group g2 --topic tour2:1 --to-offset 1 --execute > /dev/null
sluice groups describe "${B[@]}" --group g2 > "$work/lag"
awk -F'\t' '$1 == "g2" && $3 == 1 { found = ($4 == 1 && $6 == 2) } END { exit !found }' "$work/lag" \
  || fail "--to-offset 1: $(cat "$work/lag")"
sluice groups reset-offsets "${B[@]}" --group g2 --all-topics --to-timestamp 0 --execute > /dev/null
sluice groups describe "${B[@]}" --group g2 > "$work/lag"
awk -F'\t' '$1 == "g2" { lag += $6 } END { exit !(lag == 3) }' "$work/lag" || fail "--to-timestamp 0: $(cat "$work/lag")"

echo "== topics alter: partitions and configs"
sluice topics alter "${B[@]}" --topic tour --partitions 4 --config retention.ms=7200000
sluice topics describe "${B[@]}" --topic tour > "$work/describe"
grep -q "PartitionCount: 4" "$work/describe" || fail "alter: not 4 partitions"
grep -q "retention.ms=7200000" "$work/describe" || fail "alter: retention.ms not set"
sluice topics alter "${B[@]}" --topic tour --delete-config retention.ms
sluice topics describe "${B[@]}" --topic tour > "$work/describe"
! grep -q "retention.ms=" "$work/describe" || fail "alter: retention.ms not deleted"

echo "== groups delete, topics delete"
sluice groups delete "${B[@]}" --group tour-group
! sluice groups list "${B[@]}" | grep -qx tour-group || fail "tour-group is still listed"
sluice topics delete "${B[@]}" --topic tour
! sluice topics list "${B[@]}" | grep -qx tour || fail "tour is still listed"
sluice topics delete "${B[@]}" --topic tour --if-exists

echo "== failures exit 1 and say why"
if printf 'z\n' | sluice produce "${B[@]}" --topic tour2 --partition 9 2>"$work/err"; then
  fail "producing to a partition that does not exist succeeded"
fi
grep -q "partition 9 of tour2 does not exist" "$work/err" || fail "unclear error: $(cat "$work/err")"

echo "== usage errors exit 2"
set +e
sluice consume "${B[@]}" --no-such-flag >/dev/null 2>&1; status=$?
set -e
[ "$status" = 2 ] || fail "a bad flag exited $status, not 2"

echo "tour: ok"
