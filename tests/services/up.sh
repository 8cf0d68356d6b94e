#!/usr/bin/env bash
#
# Starts every server that netwar's integration tests use, and writes where
# they are to two env files:
#   tests/services/run/env           'export KEY=value' lines, for: source …/env
#   tests/services/run/services.env  plain KEY=value lines (for tools that
#                                    read dotenv files, e.g. CI steps)
#
# Idempotent: servers already running are left as they are, and the env
# files are rewritten from what is actually running. tests/services/down.sh
# stops everything again.
#
# Order: first everything is installed, downloaded and built, one service at
# a time (apt and Maven should not run twice at once); then Redis starts,
# then the JVM servers start side by side, which saves most of their startup
# time even on two cores.
#
# Environment:
#   NETWAR_SERVICES  which services to start, default
#                    "redis opensearch opensearch-secure elasticsearch neo4j"
#   plus the variables each service script documents (ports, versions,
#   passwords); the env files follow them.

set -euo pipefail
SERVICE=up
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SERVICES="${NETWAR_SERVICES:-redis opensearch opensearch-secure elasticsearch neo4j}"
ENV_FILE="$RUN_DIR/env"
DOTENV_FILE="$RUN_DIR/services.env"

# The same defaults as the service scripts, so that the env files match.
REDIS_PORT="${NETWAR_TEST_REDIS_PORT:-6390}"
OPENSEARCH_PORT="${NETWAR_TEST_OPENSEARCH_PORT:-9201}"
OPENSEARCH_SECURE_PORT="${NETWAR_TEST_OPENSEARCH_SECURE_PORT:-9203}"
OPENSEARCH_SECURE_PASSWORD="${NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD:-netwar-Test-Passw0rd}"
ELASTICSEARCH_PORT="${NETWAR_TEST_ELASTICSEARCH_PORT:-9202}"
NEO4J_BOLT_PORT="${NETWAR_TEST_NEO4J_BOLT_PORT:-7688}"
NEO4J_HTTP_PORT="${NETWAR_TEST_NEO4J_HTTP_PORT:-7475}"
NEO4J_PASSWORD="${NETWAR_TEST_NEO4J_PASSWORD:-netwar-test-password}"

script() { echo "$SERVICES_DIR/$1.sh"; }

wanted() { [[ " $SERVICES " == *" $1 "* ]]; }

started_at=$(date +%s)
mkdir -p "$RUN_DIR"

# ---------------------------------------------------------------- prepare
for service in $SERVICES; do
    [[ -x "$(script "$service")" ]] || die "unknown service '$service' (no $(script "$service"))"
    "$(script "$service")" prepare
done

# The search engines run as a system user when started as root; create it now, before they
# start side by side and would each try to.
if wanted opensearch || wanted opensearch-secure || wanted elasticsearch; then
    ensure_search_user
fi

say "installed, downloaded and built what is needed ($(( $(date +%s) - started_at ))s)"

# ------------------------------------------------------------------ start
failed=()
if wanted redis; then
    "$(script redis)" start || failed+=(redis)
fi

# The JVM servers start in parallel; each one's output is kept in a file and
# printed when it is done, so the lines of different servers do not mix.
declare -A jobs=()
for service in $SERVICES; do
    [[ "$service" == redis ]] && continue
    "$(script "$service")" start >"$RUN_DIR/up-$service.out" 2>&1 &
    jobs[$service]=$!
done
for service in $SERVICES; do
    [[ -n "${jobs[$service]:-}" ]] || continue
    if ! wait "${jobs[$service]}"; then
        failed+=("$service")
    fi
    cat "$RUN_DIR/up-$service.out"
    rm -f "$RUN_DIR/up-$service.out"
done

# --------------------------------------------------------------- env files
running() { "$(script "$1")" status >/dev/null 2>&1; }

declare -a env_lines=()
add() { env_lines+=("$1=$2"); }

if running redis; then
    add NETWAR_TEST_REDIS_URL "redis://127.0.0.1:$REDIS_PORT"
fi
if running opensearch; then
    add NETWAR_TEST_OPENSEARCH_URL "http://127.0.0.1:$OPENSEARCH_PORT"
fi
if running opensearch-secure; then
    add NETWAR_TEST_OPENSEARCH_SECURE_URL "https://127.0.0.1:$OPENSEARCH_SECURE_PORT"
    add NETWAR_TEST_OPENSEARCH_SECURE_USER admin
    add NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD "$OPENSEARCH_SECURE_PASSWORD"
    add NETWAR_TEST_OPENSEARCH_SECURE_CA_CERT "$RUN_DIR/opensearch-secure/config/ca.pem"
fi
# Left out when Maven Central does not serve Elasticsearch (the script then
# reports it as skipped): tests read the missing variable as "skip".
if running elasticsearch; then
    add NETWAR_TEST_ELASTICSEARCH_URL "http://127.0.0.1:$ELASTICSEARCH_PORT"
fi
if running neo4j; then
    add NETWAR_TEST_NEO4J_URI "bolt://127.0.0.1:$NEO4J_BOLT_PORT"
    add NETWAR_TEST_NEO4J_USER neo4j
    add NETWAR_TEST_NEO4J_PASSWORD "$NEO4J_PASSWORD"
    if [[ "$NEO4J_HTTP_PORT" != 0 ]]; then
        add NETWAR_TEST_NEO4J_HTTP_URL "http://127.0.0.1:$NEO4J_HTTP_PORT"
    fi
fi

# Written to temporary files and renamed, so a reader never sees half a file.
{
    echo "# Written by tests/services/up.sh; servers of netwar's integration tests."
    for line in "${env_lines[@]}"; do
        printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
    done
} >"$ENV_FILE.tmp"
{
    echo "# Written by tests/services/up.sh; servers of netwar's integration tests."
    printf '%s\n' "${env_lines[@]}"
} >"$DOTENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"
mv "$DOTENV_FILE.tmp" "$DOTENV_FILE"

# ----------------------------------------------------------------- summary
row() { printf '%-18s %-9s %-8s %-30s %s\n' "$@"; }
echo
row SERVICE STATE VERSION ADDRESS LOG
summary() {
    local service="$1" address="$2" log="$3" state=stopped version=-
    local rc=0
    "$(script "$service")" status >/dev/null 2>&1 || rc=$?
    if [[ $rc == 0 ]]; then
        state=running
        version="$("$(script "$service")" version 2>/dev/null || true)"
    elif [[ $rc == 4 ]]; then
        # elasticsearch.sh: not available from the package registries
        state=skipped
    fi
    row "$service" "$state" "${version:--}" "$address" "$log"
}
for service in $SERVICES; do
    case "$service" in
        redis) summary redis "redis://127.0.0.1:$REDIS_PORT" "$RUN_DIR/redis.log" ;;
        opensearch) summary opensearch "http://127.0.0.1:$OPENSEARCH_PORT" \
            "$RUN_DIR/opensearch/logs/netwar-test-opensearch.log" ;;
        opensearch-secure) summary opensearch-secure "https://127.0.0.1:$OPENSEARCH_SECURE_PORT" \
            "$RUN_DIR/opensearch-secure/logs/netwar-test-opensearch-secure.log" ;;
        elasticsearch) summary elasticsearch "http://127.0.0.1:$ELASTICSEARCH_PORT" \
            "$RUN_DIR/elasticsearch/logs/netwar-test-elasticsearch.log" ;;
        neo4j) summary neo4j "bolt://127.0.0.1:$NEO4J_BOLT_PORT" "$RUN_DIR/neo4j.log" ;;
    esac
done
echo
say "env files: $ENV_FILE (source it) and $DOTENV_FILE ($(( $(date +%s) - started_at ))s)"

if [[ ${#failed[@]} -gt 0 ]]; then
    die "failed to start: ${failed[*]}"
fi
