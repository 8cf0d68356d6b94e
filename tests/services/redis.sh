#!/usr/bin/env bash
#
# Runs the Redis server for netwar's integration tests.
#
# Owns: one redis-server process on 127.0.0.1:6390 (not the default 6379, so
# a Redis that the machine already runs is left alone), its configuration,
# data and log under tests/services/run/, and its pid file
# tests/services/run/redis.pid. 'stop' stops that process and nothing else.
#
# Redis comes from Debian's redis-server package, installed if missing.
# The append-only file is on, so a stop followed by a start keeps every
# acknowledged write: the tests restart the server to prove just that.
#
# Usage: tests/services/redis.sh {start|stop|restart|status|prepare}
# Environment: NETWAR_TEST_REDIS_PORT (default 6390).

set -euo pipefail
SERVICE=redis
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${NETWAR_TEST_REDIS_PORT:-6390}"
STATE="$RUN_DIR/redis"
CONF="$STATE/redis.conf"
PIDFILE="$RUN_DIR/redis.pid"
LOG="$RUN_DIR/redis.log"
# Matched against the process command line before any signal is sent.
PATTERN="redis-server 127.0.0.1:$PORT"

prepare() {
    require_command redis-server redis-server
    require_command redis-cli redis-tools
}

write_config() {
    mkdir -p "$STATE"
    cat >"$CONF" <<EOF
# Written by tests/services/redis.sh at every start; edit the script instead.
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize yes
pidfile $PIDFILE
logfile $LOG
dir $STATE
# Durability: the append-only file, written to disk every second and at
# shutdown, survives a stop/start. RDB snapshots are off; they would only add
# disk writes.
appendonly yes
appendfsync everysec
save ""
EOF
}

ping() {
    redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null
}

start() {
    prepare
    if pid_running "$PIDFILE" "$PATTERN"; then
        say "already running (pid $(read_pid "$PIDFILE")) at redis://127.0.0.1:$PORT; log: $LOG"
        return 0
    fi
    refuse_busy_port "$PORT" redis
    write_config
    say "starting redis-server on 127.0.0.1:$PORT (data in $STATE)"
    if ! redis-server "$CONF" </dev/null >>"$LOG" 2>&1 8>&- 9>&-; then
        show_log_tail "$LOG"
        die "redis-server did not start; see $LOG"
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        [[ "$(ping)" == PONG ]] && break
        sleep 0.1
    done
    if [[ "$(ping)" != PONG ]]; then
        show_log_tail "$LOG"
        die "redis did not answer PING within 10s; see $LOG"
    fi
    say "started (pid $(read_pid "$PIDFILE")) redis $(version) at redis://127.0.0.1:$PORT; log: $LOG"
}

stop() {
    if ! pid_running "$PIDFILE" "$PATTERN"; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    # SIGTERM makes Redis flush the append-only file before it exits.
    stop_pid "$PIDFILE" "$PATTERN" 30
    say "stopped"
}

version() {
    redis-cli -h 127.0.0.1 -p "$PORT" info server 2>/dev/null | sed -n 's/^redis_version:\(.*\)\r*$/\1/p' | tr -d '\r'
}

status() {
    if pid_running "$PIDFILE" "$PATTERN" && [[ "$(ping)" == PONG ]]; then
        say "running (pid $(read_pid "$PIDFILE")) redis $(version) at redis://127.0.0.1:$PORT; log: $LOG"
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
    version) version ;;
    *) usage "$0" ;;
esac
