#!/usr/bin/env bash
#
# Runs the Elasticsearch server for netwar's integration tests.
#
# Owns: one single-node Elasticsearch on 127.0.0.1:9202 (plain HTTP, no
# authentication; transport on 9302, loopback only), its configuration, data
# and logs under tests/services/run/elasticsearch/, and its pid file
# tests/services/run/elasticsearch/elasticsearch.pid. 'stop' stops that
# process and nothing else.
#
# Elasticsearch is not packaged by Debian. Maven Central serves Elastic's
# integration-test distribution, org.elasticsearch.distribution.integ-test-zip:
# elasticsearch (the server without a bundled JDK, with the transport and
# X-Pack core/security modules only), unpacked once into tests/services/.cache/
# and run on the machine's Java 17. If Maven Central stops serving the
# version, the script says so and exits 0 without starting anything, and
# up.sh leaves NETWAR_TEST_ELASTICSEARCH_URL out of the env file.
#
# Usage: tests/services/elasticsearch.sh {start|stop|restart|status|prepare}
# Environment:
#   NETWAR_ELASTICSEARCH_VERSION  default 8.19.21 (newest 8.x on Maven Central)
#   NETWAR_TEST_ELASTICSEARCH_PORT  HTTP port, default 9202

set -euo pipefail
SERVICE=elasticsearch
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

VERSION="${NETWAR_ELASTICSEARCH_VERSION:-8.19.21}"
PORT="${NETWAR_TEST_ELASTICSEARCH_PORT:-9202}"
TRANSPORT_PORT=$((PORT + 100))
HOME_DIR="$CACHE_DIR/elasticsearch-$VERSION"
COORDINATES="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip"
# Remembers that Maven Central did not serve the version, so that 'status'
# and up.sh can tell "not available" from "not started".
UNAVAILABLE_MARK="$RUN_DIR/elasticsearch-$VERSION.unavailable"

STATE="$RUN_DIR/elasticsearch"
CONF_DIR="$STATE/config"
DATA_DIR="$STATE/data"
LOGS_DIR="$STATE/logs"
TMP_DIR="$STATE/tmp"
PIDFILE="$STATE/elasticsearch.pid"
LOG="$RUN_DIR/elasticsearch.log"
URL="http://127.0.0.1:$PORT"
# Elasticsearch 8 hands its configuration path to the server process
# through stdin, not the command line; the temp directory is also unique to
# this node and does appear there.
PATTERN="-Djava.io.tmpdir=$TMP_DIR"
CLUSTER="netwar-test-elasticsearch"
START_TIMEOUT="${NETWAR_SERVICES_START_TIMEOUT:-180}"

# prepare: returns 1 (after saying why) when the distribution is not
# available from Maven Central; dies on any other failure.
prepare() {
    require_java
    require_command curl curl
    require_command unzip unzip
    if [[ -x "$HOME_DIR/bin/elasticsearch" ]]; then
        rm -f "$UNAVAILABLE_MARK"
        return 0
    fi
    # Asked within the last hour and not served: do not ask again (up.sh
    # calls prepare and then start).
    if [[ -n "$(find "$UNAVAILABLE_MARK" -mmin -60 2>/dev/null)" ]]; then
        say "Elasticsearch $VERSION is not available from the package registries; skipped"
        return 1
    fi
    lock_cache "$HOME_DIR.lock"
    # Another script may have prepared it while this one waited for the lock.
    if [[ -x "$HOME_DIR/bin/elasticsearch" ]]; then
        unlock_cache
        rm -f "$UNAVAILABLE_MARK"
        return 0
    fi
    local zip
    say "getting $COORDINATES (Maven Central, cached in ~/.m2)"
    if ! zip="$(maven_artifact "$COORDINATES")"; then
        mkdir -p "$RUN_DIR"
        date -u +%FT%TZ >"$UNAVAILABLE_MARK"
        unlock_cache
        say "Elasticsearch $VERSION is not available from the package registries; skipped (details: $RUN_DIR/maven.log)"
        return 1
    fi
    rm -f "$UNAVAILABLE_MARK"
    mkdir -p "$CACHE_DIR"
    unpack_zip "$zip" "$HOME_DIR"
    unlock_cache
    say "unpacked Elasticsearch $VERSION into $HOME_DIR"
}

write_config() {
    mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$TMP_DIR"
    # The distribution's own files (logging, the file realm's empty user
    # lists), then elasticsearch.yml, rewritten at every start.
    copy_missing "$HOME_DIR/config/"*.yml "$HOME_DIR/config/log4j2.properties" \
        "$HOME_DIR/config/jvm.options" "$HOME_DIR/config/users" "$HOME_DIR/config/users_roles" "$CONF_DIR"
    mkdir -p "$CONF_DIR/jvm.options.d"
    cat >"$CONF_DIR/elasticsearch.yml" <<EOF
# Written by tests/services/elasticsearch.sh at every start; edit the script instead.
cluster.name: $CLUSTER
node.name: elasticsearch
path.data: $DATA_DIR
path.logs: $LOGS_DIR
# Loopback only. This also keeps Elasticsearch in development mode, where
# the production bootstrap checks (vm.max_map_count, file limits) do not apply.
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TRANSPORT_PORT
discovery.type: single-node
# Plain HTTP without users, like the OpenSearch node on 9201. (The X-Pack
# security module is present in this distribution and would otherwise turn
# on TLS and authentication.)
xpack.security.enabled: false
# Test machines often have fuller disks than the default watermarks allow;
# past them Elasticsearch would stop allocating shards or block writes.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
}

# The root endpoint (GET /) lives in a module that the integration-test
# distribution of Elasticsearch 8 lacks, so ask the nodes API instead.
version() {
    curl -sS --max-time 5 "$URL/_nodes/_local?filter_path=nodes.*.version" 2>/dev/null | json_field version
}

start() {
    if ! prepare; then
        return 0
    fi
    if pid_running "$PIDFILE" "$PATTERN"; then
        say "already running (pid $(read_pid "$PIDFILE")) at $URL; log: $LOGS_DIR/$CLUSTER.log"
        return 0
    fi
    refuse_busy_port "$PORT" elasticsearch
    refuse_busy_port "$TRANSPORT_PORT" "elasticsearch transport"
    write_config
    prepare_search_user "$STATE"
    say "starting Elasticsearch $VERSION on $URL (data in $DATA_DIR)"
    : >"$LOG"
    # A pid file left by a crashed run would look like a dead new server.
    rm -f "$PIDFILE"
    if is_root; then chown "$SEARCH_USER:" "$LOG"; fi
    # -d: Elasticsearch daemonizes itself (its launcher returns once the node
    # has started) and writes its pid file; setsid keeps it out of the
    # caller's process group. ES_JAVA_HOME is required: the integration-test
    # zip has no bundled JDK.
    if ! setsid "${AS_SEARCH_USER[@]}" env \
            ES_JAVA_HOME="$(java_home)" \
            ES_PATH_CONF="$CONF_DIR" \
            ES_TMPDIR="$TMP_DIR" \
            ES_JAVA_OPTS="-Xms512m -Xmx512m" \
            "$HOME_DIR/bin/elasticsearch" -d -p "$PIDFILE" </dev/null >>"$LOG" 2>&1 8>&- 9>&-; then
        show_log_tail "$LOG"
        show_log_tail "$LOGS_DIR/$CLUSTER.log"
        die "Elasticsearch did not start; see $LOG and $LOGS_DIR/$CLUSTER.log"
    fi
    wait_until_ready
    say "started (pid $(read_pid "$PIDFILE")) Elasticsearch $(version) at $URL; log: $LOGS_DIR/$CLUSTER.log"
}

# Ready means: HTTP answers and the cluster is at least yellow.
wait_until_ready() {
    local i
    for ((i = 0; i < START_TIMEOUT; i++)); do
        if curl -fsS --max-time 3 "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; then
            return 0
        fi
        if server_died "$i"; then
            show_log_tail "$LOG"
            show_log_tail "$LOGS_DIR/$CLUSTER.log" 60
            die "Elasticsearch exited during startup; see $LOGS_DIR/$CLUSTER.log"
        fi
        sleep 1
    done
    show_log_tail "$LOGS_DIR/$CLUSTER.log" 60
    die "Elasticsearch did not answer at $URL within ${START_TIMEOUT}s; see $LOGS_DIR/$CLUSTER.log"
}

stop() {
    if ! pid_running "$PIDFILE" "$PATTERN"; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    stop_pid "$PIDFILE" "$PATTERN" 60
    say "stopped"
}

# Exit status: 0 running, 3 not running, 4 not available from the package
# registries (so skipped).
status() {
    if pid_running "$PIDFILE" "$PATTERN" && curl -fsS --max-time 5 "$URL/_cluster/health" >/dev/null 2>&1; then
        say "running (pid $(read_pid "$PIDFILE")) Elasticsearch $(version) at $URL; log: $LOGS_DIR/$CLUSTER.log"
    elif [[ -e "$UNAVAILABLE_MARK" ]]; then
        say "not available from the package registries (Elasticsearch $VERSION); skipped"
        return 4
    else
        say "not running"
        return 3
    fi
}

case "${1:-}" in
    start) lock_service; start ;;
    stop) lock_service; stop ;;
    restart) lock_service; stop; start ;;
    status) status ;;
    prepare) prepare || true ;;
    version) version ;;
    *) usage "$0" ;;
esac
