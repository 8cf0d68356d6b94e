#!/usr/bin/env bash
#
# Runs the Neo4j server for netwar's integration tests.
#
# Owns: one Java process running Neo4j 5.26 (community edition) with Bolt on
# 127.0.0.1:7688 and HTTP on 127.0.0.1:7475 (not the standard 7687/7474, so
# a Neo4j installed on the machine is left alone); its data under
# tests/services/run/neo4j/, its output in tests/services/run/neo4j.log and
# its pid file tests/services/run/neo4j.pid. 'stop' stops that process and
# nothing else.
#
# Neo4j's server distribution is not on any package registry we can use, so
# the server is the small launcher in tests/services/neo4j-launcher/, built
# with Maven against Neo4j's test harness (org.neo4j.test:neo4j-harness,
# which embeds the complete database and its Bolt and HTTP servers). The
# build output is cached in tests/services/.cache/neo4j-launcher/ and redone
# only when the launcher's sources change. See the launcher's Javadoc for
# how it differs from the harness defaults.
#
# Authentication is on: user neo4j, password $NETWAR_TEST_NEO4J_PASSWORD
# (default netwar-test-password), set by the launcher at every start.
# Data persists across stop/start.
#
# Usage: tests/services/neo4j.sh {start|stop|restart|status|prepare}
# Environment: NETWAR_TEST_NEO4J_BOLT_PORT (7688), NETWAR_TEST_NEO4J_HTTP_PORT
# (7475; 0 disables HTTP), NETWAR_TEST_NEO4J_PASSWORD, NETWAR_NEO4J_VERSION
# (the harness version, default: the one in neo4j-launcher/pom.xml).

set -euo pipefail
SERVICE=neo4j
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BOLT_PORT="${NETWAR_TEST_NEO4J_BOLT_PORT:-7688}"
HTTP_PORT="${NETWAR_TEST_NEO4J_HTTP_PORT:-7475}"
PASSWORD="${NETWAR_TEST_NEO4J_PASSWORD:-netwar-test-password}"
SOURCE_DIR="$SERVICES_DIR/neo4j-launcher"
BUILD_DIR="$CACHE_DIR/neo4j-launcher"
STATE="$RUN_DIR/neo4j"
PIDFILE="$RUN_DIR/neo4j.pid"
LOG="$RUN_DIR/neo4j.log"
MAIN_CLASS="org.netwar.testing.NetwarNeo4jLauncher"
PATTERN="$MAIN_CLASS $STATE"
URI="bolt://127.0.0.1:$BOLT_PORT"
START_TIMEOUT="${NETWAR_SERVICES_START_TIMEOUT:-180}"
# Heap for the whole server; the page cache (64 MiB) is set by the launcher.
JAVA_OPTS=(-Xms256m -Xmx768m)

# Fingerprint of everything the build depends on, so that a changed pom.xml,
# launcher source or version override triggers a rebuild.
source_fingerprint() {
    {
        echo "${NETWAR_NEO4J_VERSION:-}"
        find "$SOURCE_DIR" -path "$SOURCE_DIR/target" -prune -o -type f -print0 \
            | sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

prepare() {
    require_java
    local stamp="$BUILD_DIR/.fingerprint" fingerprint
    fingerprint="$(source_fingerprint)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$fingerprint" && -d "$BUILD_DIR/lib" ]]; then
        return 0
    fi
    lock_cache "$BUILD_DIR.lock"
    # Another script may have built it while this one waited for the lock.
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$fingerprint" && -d "$BUILD_DIR/lib" ]]; then
        unlock_cache
        return 0
    fi
    require_maven
    say "building the Neo4j launcher (Maven downloads the harness on the first build)"
    local log="$RUN_DIR/neo4j-build.log" version_arg=()
    if [[ -n "${NETWAR_NEO4J_VERSION:-}" ]]; then
        version_arg=(-Dneo4j.version="$NETWAR_NEO4J_VERSION")
    fi
    mkdir -p "$RUN_DIR"
    rm -rf "$BUILD_DIR"
    # -q keeps a good build silent; on failure the log's tail is shown.
    if ! mvn -B -q -f "$SOURCE_DIR/pom.xml" "${version_arg[@]}" \
            -Dlauncher.build.directory="$BUILD_DIR" package >"$log" 2>&1; then
        show_log_tail "$log" 60
        die "could not build the Neo4j launcher; see $log"
    fi
    echo "$fingerprint" >"$stamp"
    unlock_cache
    say "built the Neo4j launcher into $BUILD_DIR"
}

# The harness version actually built, read from the jar copied into lib/.
neo4j_version() {
    local jar
    jar="$(find "$BUILD_DIR/lib" -name 'neo4j-harness-*.jar' 2>/dev/null | head -n 1)"
    jar="${jar##*/neo4j-harness-}"
    echo "${jar%.jar}"
}

start() {
    prepare
    if pid_running "$PIDFILE" "$PATTERN"; then
        say "already running (pid $(read_pid "$PIDFILE")) at $URI; log: $LOG"
        return 0
    fi
    refuse_busy_port "$BOLT_PORT" "neo4j bolt"
    if [[ "$HTTP_PORT" != 0 ]]; then refuse_busy_port "$HTTP_PORT" "neo4j http"; fi
    mkdir -p "$STATE"
    # A stop by SIGKILL leaves the harness's scratch folder behind; it holds
    # nothing worth keeping (the data is elsewhere).
    rm -rf "$STATE/work"
    local offset
    offset="$(stat -c %s "$LOG" 2>/dev/null || echo 0)"
    say "starting Neo4j $(neo4j_version) on $URI (data in $STATE/data)"
    # setsid: out of the caller's process group, so a CI runner that ends the
    # calling job does not take the server with it. In a non-interactive
    # shell the background child is no group leader, so setsid does not fork
    # and $! is the Java process itself.
    NETWAR_TEST_NEO4J_PASSWORD="$PASSWORD" setsid java "${JAVA_OPTS[@]}" \
        -cp "$BUILD_DIR/classes:$BUILD_DIR/lib/*" \
        "$MAIN_CLASS" "$STATE" "$BOLT_PORT" "$HTTP_PORT" </dev/null >>"$LOG" 2>&1 8>&- 9>&- &
    local pid=$!
    echo "$pid" >"$PIDFILE"

    # Ready is the launcher's own line, printed after the password is set,
    # rather than an open port: Bolt listens a moment before that.
    local i ready=0
    for ((i = 0; i < START_TIMEOUT * 2; i++)); do
        if tail -c +"$((offset + 1))" "$LOG" | grep -q "^neo4j bolt://.* ready$"; then
            ready=1
            break
        fi
        # Our own child, so a plain liveness check is enough (its command
        # line only becomes the Java one once exec has happened).
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -c +"$((offset + 1))" "$LOG" | tail -n 40 >&2
            rm -f "$PIDFILE"
            die "Neo4j exited during startup; see $LOG"
        fi
        sleep 0.5
    done
    if [[ $ready != 1 ]] || ! port_open "$BOLT_PORT"; then
        show_log_tail "$LOG"
        die "Neo4j did not get ready within ${START_TIMEOUT}s; see $LOG"
    fi
    say "started (pid $(read_pid "$PIDFILE")) Neo4j $(neo4j_version) at $URI, user neo4j; log: $LOG"
}

stop() {
    if ! pid_running "$PIDFILE" "$PATTERN"; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    # SIGTERM runs the launcher's shutdown hook, which closes the database
    # cleanly so that the next start needs no recovery.
    stop_pid "$PIDFILE" "$PATTERN" 60
    say "stopped"
}

status() {
    if pid_running "$PIDFILE" "$PATTERN" && port_open "$BOLT_PORT"; then
        say "running (pid $(read_pid "$PIDFILE")) Neo4j $(neo4j_version) at $URI; log: $LOG"
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
    prepare) prepare ;;
    version) neo4j_version ;;
    *) usage "$0" ;;
esac
