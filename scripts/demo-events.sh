#!/bin/sh
# Prints N synthetic card transactions for the demo job, one a line as
# `account_id|{json}`, for kafka-console-producer with
# `--property parse.key=true --property key.separator='|'` (keyed by
# account, so an account's events stay in one partition). Accounts are drawn
# from a feature CSV (jobs/demo/features.csv); amounts scatter around each
# account's 30-day average; event_time is now. A rough stand-in for the
# demo's generator (`scorestream demo` produces to its in-process Kafka only),
# with none of its malformed events.
#
# Usage: demo-events.sh [-n N] [-s SEED] FEATURES.csv
set -eu

usage() {
  echo "usage: $0 [-n N] [-s SEED] FEATURES.csv" >&2
  exit 2
}

n=1000
seed=""
while getopts n:s: opt; do
  case "$opt" in
    n) n="$OPTARG" ;;
    s) seed="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
[ -r "$1" ] || { echo "$0: cannot read $1" >&2; exit 1; }
case "$n" in
  '' | *[!0-9]*) echo "$0: -n wants a number, got \"$n\"" >&2; exit 2 ;;
esac
[ -n "$seed" ] || seed="$(date +%s)"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

LC_ALL=C awk -F, -v n="$n" -v seed="$seed" -v now="$now" '
function pick(list, k,    parts) { k = split(list, parts, " "); return parts[int(rand() * k) + 1] }
{ sub(/\r$/, "") }
NR == 1 {
  for (i = 1; i <= NF; i++) {
    if ($i == "account_id") id_at = i
    if ($i == "home_country") home_at = i
    if ($i == "avg_amount_30d") avg_at = i
  }
  if (!id_at || !home_at || !avg_at) {
    print FILENAME ": needs columns account_id, home_country and avg_amount_30d" > "/dev/stderr"
    bad = 1
    exit 1
  }
  next
}
$0 != "" { id[m] = $id_at; home[m] = $home_at; avg[m] = $avg_at + 0; m++ }
END {
  if (bad) exit 1
  if (m == 0) { print FILENAME ": no accounts" > "/dev/stderr"; exit 1 }
  srand(seed)
  categories = "grocery grocery grocery restaurants restaurants travel electronics fuel entertainment gift_cards crypto"
  channels = "pos pos pos web web mobile"
  countries = "US GB DE FR ES IT NL BR IN JP"
  for (e = 0; e < n; e++) {
    a = int(rand() * m)
    # ~exp(N(0, 0.6)): the sum of three uniforms is roughly normal.
    z = (rand() + rand() + rand() - 1.5) * 2
    amount = avg[a] * exp(0.6 * z)
    if (rand() < 0.03) amount *= 6
    if (amount < 0.5) amount = 0.5
    country = rand() < 0.92 ? home[a] : pick(countries)
    printf "%s|{\"event_id\":\"evt-%d-%06d\",\"account_id\":\"%s\",\"amount\":%.2f,\"merchant_category\":\"%s\",\"country\":\"%s\",\"channel\":\"%s\",\"event_time\":\"%s\"}\n", \
      id[a], seed, e, id[a], amount, pick(categories), country, pick(channels), now
  }
}
' "$1"
