#!/bin/sh
# Turns a feature CSV (a header row, then one row per entity, as
# jobs/demo/features.csv) into Redis commands for the feature store's plain
# hash layout (`layout = "hash"`): one hash per entity at KEY_TEMPLATE with
# `{key}` replaced by the entity key, one text field per other column. An
# empty cell writes no field, so the feature counts as missing (the job's
# `on_missing`), not as a value that fails to parse.
#
# Output is the Redis protocol, for `redis-cli --pipe` (which exits non-zero
# if any command failed):
#
#   sh scripts/features-to-redis.sh jobs/demo/features.csv > features.resp
#   redis-cli -h HOST --pipe < features.resp
#
# Each entity's hash is written under a temporary key and renamed into place,
# so a re-seed while jobs are scoring never shows a half-written entity.
# Plain CSV only: quoted fields are refused.
#
# Usage: features-to-redis.sh [-k KEY_COLUMN] [-t KEY_TEMPLATE] FEATURES.csv
#   -k  the column holding the entity key (default: the first column)
#   -t  the job's `features.store.key_template` (default: account:{key})
set -eu

usage() {
  echo "usage: $0 [-k KEY_COLUMN] [-t KEY_TEMPLATE] FEATURES.csv" >&2
  exit 2
}

key_column=""
template="account:{key}"
while getopts k:t: opt; do
  case "$opt" in
    k) key_column="$OPTARG" ;;
    t) template="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
[ -r "$1" ] || { echo "$0: cannot read $1" >&2; exit 1; }
case "$template" in
  *"{key}"*) ;;
  *) echo "$0: key template \"$template\" has no {key} placeholder" >&2; exit 1 ;;
esac

# Bytes, not characters, for the protocol's lengths.
LC_ALL=C awk -F, -v key_column="$key_column" -v template="$template" '
function fail(msg) {
  printf "%s line %d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
  failed = 1
  exit 1
}
function arg(s) { printf "$%d\r\n%s\r\n", length(s), s }
{ sub(/\r$/, "") }
/"/ { fail("quoted CSV fields are not supported") }
NR == 1 {
  width = NF
  key_at = 0
  for (i = 1; i <= NF; i++) {
    name[i] = $i
    if ($i == key_column) key_at = i
  }
  if (key_column == "") key_at = 1
  if (key_at == 0) fail("no column named " key_column " in the header")
  at = index(template, "{key}")
  prefix = substr(template, 1, at - 1)
  suffix = substr(template, at + 5)
  next
}
$0 == "" { next }
{
  if (NF != width) fail(sprintf("%d fields, the header has %d", NF, width))
  if ($key_at == "") fail("empty key")
  key = prefix $key_at suffix
  tmp = key ":seeding"
  n = 0
  for (i = 1; i <= NF; i++) if (i != key_at && $i != "") n++
  printf "*2\r\n"; arg("DEL"); arg(tmp)
  if (n == 0) {
    # Nothing known about this entity: remove it.
    printf "*2\r\n"; arg("DEL"); arg(key)
    next
  }
  printf "*%d\r\n", 2 + 2 * n; arg("HSET"); arg(tmp)
  for (i = 1; i <= NF; i++) if (i != key_at && $i != "") { arg(name[i]); arg($i) }
  printf "*3\r\n"; arg("RENAME"); arg(tmp); arg(key)
}
END { if (!failed && NR == 0) { printf "%s: empty file\n", FILENAME > "/dev/stderr"; exit 1 } }
' "$1"
