#!/usr/bin/env bash
#
# Bulk timeline capture benchmark: how many tweets per second `timeline-bulk run` stores, and
# its peak memory, for a queue of accounts served by the simulator with rate limits off.
#
#   bench/timeline-bulk.sh [--accounts N] [--concurrency N] [--stores embedded|servers]
#
# --stores embedded   everything in one SQLite file (the default configuration)
# --stores servers    Redis queue, OpenSearch/Elasticsearch archive, Neo4j graph; their
#                     addresses come from tests/services/run/env (start them with
#                     tests/services/up.sh) or from the NETWAR_TEST_* variables it sets
#
# The simulator and the worker run on the same machine, so the figure includes the cost of
# serving the API; the simulator's own CPU time is printed beside it to show its share.
# Results go to stdout as one line of key=value pairs, preceded by the worker's summary.

set -euo pipefail
cd "$(dirname "$0")/.."

accounts=1000
concurrency=8
stores=embedded
seed=7
while [[ $# -gt 0 ]]; do
    case "$1" in
        --accounts) accounts="$2"; shift 2 ;;
        --concurrency) concurrency="$2"; shift 2 ;;
        --stores) stores="$2"; shift 2 ;;
        --seed) seed="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

cargo build --release --quiet -p x-api-sim -p timeline-bulk
bin=target/release
work="$(mktemp -d)"
sim_pid=
cleanup() {
    [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A world a little larger than the queue, so that the accounts are a sample of every kind.
world=$(( accounts + accounts / 10 + 10 ))
"$bin/x-api-sim" serve --listen 127.0.0.1:0 --seed "$seed" --users "$world" \
    --no-rate-limits --credentials-out "$work/credentials.toml" >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 100); do
    [[ -s "$work/sim.out" ]] && break
    sleep 0.1
done
address="$(grep -o 'http://[0-9.:]*' "$work/sim.out" | head -n1)"
[[ -n "$address" ]] || { echo "the simulator did not start: $(cat "$work/sim.log")" >&2; exit 3; }

# The accounts: the first N users of the world, by handle.
# (Whole files, not `head`, so that no stage of the pipe dies of SIGPIPE under pipefail.)
curl -sf "$address/_sim/truth" >"$work/truth.jsonl"
awk -v n="$accounts" '/"kind":"user"/ && taken < n { print; taken++ }' "$work/truth.jsonl" \
    | sed 's/.*"username":"\([^"]*\)".*/@\1/' >"$work/accounts.txt"

{
    printf '[api]\nbase_url = "%s"\ncredentials_file = "%s"\n\n' "$address" "$work/credentials.toml"
    printf '[store]\npath = "%s"\n' "$work/netwar.sqlite"
} >"$work/netwar.conf"

if [[ "$stores" == servers ]]; then
    env_file=tests/services/run/env
    # shellcheck disable=SC1090
    [[ -f "$env_file" ]] && source "$env_file"
    : "${NETWAR_TEST_REDIS_URL:?start the servers with tests/services/up.sh}"
    search_url="${NETWAR_TEST_OPENSEARCH_URL:-${NETWAR_TEST_ELASTICSEARCH_URL:?no search server}}"
    : "${NETWAR_TEST_NEO4J_URI:?no Neo4j server}"
    run_id="bench-$(date +%s)-$$"
    cat >>"$work/netwar.conf" <<EOF
queue = "redis"
archive = "elasticsearch"
graph = "neo4j"

[redis]
url = "$NETWAR_TEST_REDIS_URL"
prefix = "$run_id"

[elasticsearch]
url = "$search_url"
tweet_index = "$run_id-tw"
user_index = "$run_id-tu"

[neo4j]
uri = "$NETWAR_TEST_NEO4J_URI"
user = "${NETWAR_TEST_NEO4J_USER:-neo4j}"
password = "${NETWAR_TEST_NEO4J_PASSWORD:-}"
namespace = "$run_id"
EOF
elif [[ "$stores" != embedded ]]; then
    echo "--stores is embedded or servers" >&2
    exit 2
fi

export NETWAR_CONFIG="$work/netwar.conf"
"$bin/timeline-bulk" -q enqueue "$work/accounts.txt" >/dev/null

sim_cpu_before=$(awk '{print $14 + $15}' "/proc/$sim_pid/stat")
start=$(date +%s.%N)
/usr/bin/time -f '%M %U %S' -o "$work/time" \
    "$bin/timeline-bulk" -q run --concurrency "$concurrency" | tee "$work/run.out"
end=$(date +%s.%N)
sim_cpu_after=$(awk '{print $14 + $15}' "/proc/$sim_pid/stat")

read -r peak_kib user_s system_s <"$work/time"
new=$(grep -o '[0-9]* new' "$work/run.out" | grep -o '[0-9]*')
ticks=$(getconf CLK_TCK)
awk -v new="$new" -v start="$start" -v end="$end" -v kib="$peak_kib" -v u="$user_s" \
    -v s="$system_s" -v sim=$(( sim_cpu_after - sim_cpu_before )) -v ticks="$ticks" \
    -v stores="$stores" -v accounts="$accounts" -v conc="$concurrency" 'BEGIN {
    wall = end - start
    printf "stores=%s accounts=%d concurrency=%d tweets=%d seconds=%.1f tweets_per_s=%.0f ", \
        stores, accounts, conc, new, wall, new / wall
    printf "peak_rss_mib=%.0f worker_cpu_s=%.1f simulator_cpu_s=%.1f\n", \
        kib / 1024, u + s, sim / ticks
}'
