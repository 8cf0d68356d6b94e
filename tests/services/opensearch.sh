#!/usr/bin/env bash
#
# Runs the OpenSearch server for netwar's integration tests.
#
# Owns: one single-node OpenSearch on 127.0.0.1:9201 (HTTP; transport on
# 9301, loopback only), its configuration, data and logs under
# tests/services/run/opensearch/, and its pid file
# tests/services/run/opensearch/opensearch.pid. 'stop' stops that process and
# nothing else.
#
# OpenSearch is not packaged by Debian. Maven Central serves its
# integration-test distribution, org.opensearch.distribution.integ-test-zip:
# opensearch (the same server, without a bundled JDK and with only the
# transport module; see README.md for what that leaves out), which is
# unpacked once into tests/services/.cache/ and run on the machine's Java 17.
#
# With NETWAR_OPENSEARCH_SECURE=1 (which is what opensearch-secure.sh sets)
# the same script runs a second, separate node on 127.0.0.1:9203 with the
# OpenSearch security plugin from Maven Central: HTTPS with a test CA made
# here with openssl, and HTTP basic authentication.
#
# Usage: tests/services/opensearch.sh {start|stop|restart|status|prepare}
# Environment:
#   NETWAR_OPENSEARCH_VERSION  default 2.19.4 (see README.md for why not newer)
#   NETWAR_TEST_OPENSEARCH_PORT  HTTP port, default 9201 (9203 when secure)
#   NETWAR_TEST_OPENSEARCH_PASSWORD  password of user admin when secure

set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# 2.19.4 is the newest 2.19 release for which Maven Central serves both the
# server and the security plugin (2.19.5 and 2.19.6 exist for the server
# only), and a plugin must match the server version exactly.
VERSION="${NETWAR_OPENSEARCH_VERSION:-2.19.4}"
SECURITY_PLUGIN_VERSION="$VERSION.0"
SECURE="${NETWAR_OPENSEARCH_SECURE:-0}"

if [[ "$SECURE" == 1 ]]; then
    SERVICE=opensearch-secure
    PORT="${NETWAR_TEST_OPENSEARCH_PORT:-9203}"
    TRANSPORT_PORT=$((PORT + 100))
    HOME_DIR="$CACHE_DIR/opensearch-$VERSION-security"
    SCHEME=https
    ADMIN_USER=admin
    ADMIN_PASSWORD="${NETWAR_TEST_OPENSEARCH_PASSWORD:-netwar-Test-Passw0rd}"
else
    SERVICE=opensearch
    PORT="${NETWAR_TEST_OPENSEARCH_PORT:-9201}"
    TRANSPORT_PORT=$((PORT + 100))
    HOME_DIR="$CACHE_DIR/opensearch-$VERSION"
    SCHEME=http
fi

STATE="$RUN_DIR/$SERVICE"
CONF_DIR="$STATE/config"
DATA_DIR="$STATE/data"
LOGS_DIR="$STATE/logs"
TMP_DIR="$STATE/tmp"
PIDFILE="$STATE/$SERVICE.pid"
# stdout/stderr of the launcher; the server's own log is $LOGS_DIR/<cluster>.log
LOG="$RUN_DIR/$SERVICE.log"
URL="$SCHEME://127.0.0.1:$PORT"
# The configuration directory is unique to this node, so matching it against
# the command line identifies our process and no other OpenSearch.
PATTERN="-Dopensearch.path.conf=$CONF_DIR"
CLUSTER="netwar-test-$SERVICE"
START_TIMEOUT="${NETWAR_SERVICES_START_TIMEOUT:-180}"

# ------------------------------------------------------------- preparing

prepare() {
    require_java
    require_command curl curl
    require_command unzip unzip
    if [[ -x "$HOME_DIR/bin/opensearch" ]]; then
        return 0
    fi
    require_maven
    local downloads="$CACHE_DIR/downloads"
    local coordinates="org.opensearch.distribution.integ-test-zip:opensearch:$VERSION:zip"
    say "fetching $coordinates from Maven Central"
    if ! maven_fetch "$coordinates" "$downloads"; then
        show_log_tail "$RUN_DIR/maven.log" 20
        die "Maven Central does not serve $coordinates"
    fi
    mkdir -p "$CACHE_DIR"
    unpack_zip "$downloads/opensearch-$VERSION.zip" "$HOME_DIR.partial"
    # The zip stays in ~/.m2; this copy is not needed once unpacked.
    rm -f "$downloads/opensearch-$VERSION.zip"
    if [[ "$SECURE" == 1 ]]; then
        install_security_plugin "$HOME_DIR.partial"
    fi
    mv "$HOME_DIR.partial" "$HOME_DIR"
    say "unpacked OpenSearch $VERSION into $HOME_DIR"
}

install_security_plugin() {
    local home="$1" downloads="$CACHE_DIR/downloads"
    local coordinates="org.opensearch.plugin:opensearch-security:$SECURITY_PLUGIN_VERSION:zip"
    say "fetching $coordinates from Maven Central"
    if ! maven_fetch "$coordinates" "$downloads"; then
        show_log_tail "$RUN_DIR/maven.log" 20
        die "Maven Central does not serve $coordinates"
    fi
    local zip="$downloads/opensearch-security-$SECURITY_PLUGIN_VERSION.zip"
    if ! OPENSEARCH_JAVA_HOME="$(java_home)" "$home/bin/opensearch-plugin" install --batch "file://$zip" \
            >>"$RUN_DIR/maven.log" 2>&1; then
        show_log_tail "$RUN_DIR/maven.log" 20
        die "could not install the security plugin"
    fi
    rm -f "$zip"
}

# ------------------------------------------------------------ configuring

write_config() {
    mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$TMP_DIR"
    # Start from the distribution's own files; opensearch.yml and jvm.options
    # are then rewritten at every start so that edits to this script apply.
    copy_missing "$HOME_DIR/config/log4j2.properties" "$CONF_DIR"
    mkdir -p "$CONF_DIR/jvm.options.d"
    # Relative paths in the stock jvm.options point into the distribution,
    # which is shared and not ours to write: send GC logs, crash files and
    # heap dumps to this node's state directory.
    sed -e "s#logs/#$LOGS_DIR/#g" \
        -e "s#HeapDumpPath=data#HeapDumpPath=$STATE#" \
        -e 's#^-Xms1g#-Xms512m#' -e 's#^-Xmx1g#-Xmx512m#' \
        "$HOME_DIR/config/jvm.options" >"$CONF_DIR/jvm.options"

    cat >"$CONF_DIR/opensearch.yml" <<EOF
# Written by tests/services/opensearch.sh at every start; edit the script instead.
cluster.name: $CLUSTER
node.name: $SERVICE
path.data: $DATA_DIR
path.logs: $LOGS_DIR
# Loopback only. This also keeps OpenSearch in development mode, where the
# production bootstrap checks (vm.max_map_count, file limits) do not apply.
network.host: 127.0.0.1
http.port: $PORT
transport.port: $TRANSPORT_PORT
discovery.type: single-node
# Test machines often have fuller disks than the default watermarks allow;
# past them OpenSearch would stop allocating shards or make indices read-only.
cluster.routing.allocation.disk.threshold_enabled: false
EOF
    if [[ "$SECURE" == 1 ]]; then
        write_security_config
    fi
}

# A private certificate authority, the node's certificate for HTTPS and the
# transport layer, and an admin certificate (the security plugin requires
# one in its configuration). Made once and kept, so clients can keep trusting
# the CA across restarts. Keys are PKCS#8, the format the plugin reads.
make_certificates() {
    local certs="$CONF_DIR"
    [[ -s "$certs/node.pem" && -s "$certs/ca.pem" ]] && return 0
    require_command openssl openssl
    say "creating a test CA and certificates in $certs"
    local subj="/O=netwar/OU=test"
    openssl genrsa -out "$certs/ca-key.pem" 2048 2>/dev/null
    openssl req -new -x509 -sha256 -days 3650 -key "$certs/ca-key.pem" \
        -subj "$subj/CN=netwar-test-ca" -out "$certs/ca.pem"
    local name
    for name in node admin; do
        openssl genrsa -out "$certs/$name-key-rsa.pem" 2048 2>/dev/null
        openssl pkcs8 -inform PEM -outform PEM -topk8 -nocrypt \
            -in "$certs/$name-key-rsa.pem" -out "$certs/$name-key.pem"
        rm -f "$certs/$name-key-rsa.pem"
    done
    openssl req -new -key "$certs/node-key.pem" -subj "$subj/CN=localhost" -out "$certs/node.csr"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        "extendedKeyUsage=serverAuth,clientAuth" >"$certs/node.ext"
    openssl x509 -req -sha256 -days 3650 -in "$certs/node.csr" -CA "$certs/ca.pem" \
        -CAkey "$certs/ca-key.pem" -CAcreateserial -extfile "$certs/node.ext" \
        -out "$certs/node.pem" 2>/dev/null
    openssl req -new -key "$certs/admin-key.pem" -subj "$subj/CN=netwar-admin" -out "$certs/admin.csr"
    openssl x509 -req -sha256 -days 3650 -in "$certs/admin.csr" -CA "$certs/ca.pem" \
        -CAkey "$certs/ca-key.pem" -CAcreateserial -out "$certs/admin.pem" 2>/dev/null
    rm -f "$certs"/*.csr "$certs/node.ext" "$certs/ca.srl"
}

write_security_config() {
    make_certificates
    cat >>"$CONF_DIR/opensearch.yml" <<EOF

# Security plugin: TLS on both layers with the certificates made by
# opensearch.sh, and the users of opensearch-security/internal_users.yml.
plugins.security.ssl.transport.pemcert_filepath: node.pem
plugins.security.ssl.transport.pemkey_filepath: node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: node.pem
plugins.security.ssl.http.pemkey_filepath: node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: ca.pem
plugins.security.nodes_dn: ["CN=localhost,OU=test,O=netwar"]
plugins.security.authcz.admin_dn: ["CN=netwar-admin,OU=test,O=netwar"]
# Create the security index from the files below on the first start; later
# starts find it in the data directory.
plugins.security.allow_default_init_securityindex: true
plugins.security.restapi.roles_enabled: ["all_access"]
plugins.security.check_snapshot_restore_write_privileges: true
plugins.security.enable_snapshot_restore_privilege: true
EOF
    # The plugin ships its default security configuration in the
    # distribution's config folder; this node reads its own copy.
    mkdir -p "$CONF_DIR/opensearch-security"
    copy_missing "$HOME_DIR/config/opensearch-security/"*.yml "$CONF_DIR/opensearch-security"
    local hash
    hash="$(OPENSEARCH_JAVA_HOME="$(java_home)" bash "$HOME_DIR/plugins/opensearch-security/tools/hash.sh" \
        -p "$ADMIN_PASSWORD" 2>/dev/null | tail -n 1)"
    [[ "$hash" == '$2'* ]] || die "could not hash the admin password"
    cat >"$CONF_DIR/opensearch-security/internal_users.yml" <<EOF
# Written by tests/services/opensearch.sh. Read only when the security index
# is created, i.e. on the first start with an empty data directory.
_meta:
  type: "internalusers"
  config_version: 2
$ADMIN_USER:
  hash: "$hash"
  reserved: true
  backend_roles:
    - "admin"
  description: "netwar integration tests"
EOF
}

# -------------------------------------------------------------- running

curl_node() {
    if [[ "$SECURE" == 1 ]]; then
        curl -sS --max-time 5 --cacert "$CONF_DIR/ca.pem" -u "$ADMIN_USER:$ADMIN_PASSWORD" "$@"
    else
        curl -sS --max-time 5 "$@"
    fi
}

version() {
    curl_node "$URL" 2>/dev/null | json_field number
}

start() {
    prepare
    if pid_running "$PIDFILE" "$PATTERN"; then
        say "already running (pid $(read_pid "$PIDFILE")) at $URL; log: $LOGS_DIR/$CLUSTER.log"
        return 0
    fi
    refuse_busy_port "$PORT" "$SERVICE"
    refuse_busy_port "$TRANSPORT_PORT" "$SERVICE transport"
    write_config
    prepare_search_user "$STATE"
    say "starting OpenSearch $VERSION on $URL (data in $DATA_DIR)"
    : >"$LOG"
    if is_root; then chown "$SEARCH_USER:" "$LOG"; fi
    # -d: OpenSearch daemonizes itself and writes its pid file; setsid keeps
    # it out of the caller's process group, so a CI runner that ends the
    # calling job does not take the server with it. OPENSEARCH_JAVA_HOME is
    # required: the integration-test zip has no bundled JDK.
    if ! setsid "${AS_SEARCH_USER[@]}" env \
            OPENSEARCH_JAVA_HOME="$(java_home)" \
            OPENSEARCH_PATH_CONF="$CONF_DIR" \
            OPENSEARCH_TMPDIR="$TMP_DIR" \
            OPENSEARCH_JAVA_OPTS="-Xms512m -Xmx512m" \
            "$HOME_DIR/bin/opensearch" -d -p "$PIDFILE" </dev/null >>"$LOG" 2>&1; then
        show_log_tail "$LOG"
        show_log_tail "$LOGS_DIR/$CLUSTER.log"
        die "OpenSearch did not start; see $LOG and $LOGS_DIR/$CLUSTER.log"
    fi
    wait_until_ready
    say "started (pid $(read_pid "$PIDFILE")) OpenSearch $(version) at $URL; log: $LOGS_DIR/$CLUSTER.log"
}

# Ready means: the HTTP port answers and the cluster is at least yellow, so
# the first request of a test does not race shard allocation.
wait_until_ready() {
    local i
    for ((i = 0; i < START_TIMEOUT; i++)); do
        if curl_node -f "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; then
            return 0
        fi
        if [[ $i -gt 5 ]] && ! pid_running "$PIDFILE" "$PATTERN"; then
            show_log_tail "$LOG"
            show_log_tail "$LOGS_DIR/$CLUSTER.log" 60
            die "OpenSearch exited during startup; see $LOGS_DIR/$CLUSTER.log"
        fi
        sleep 1
    done
    show_log_tail "$LOGS_DIR/$CLUSTER.log" 60
    die "OpenSearch did not answer at $URL within ${START_TIMEOUT}s; see $LOGS_DIR/$CLUSTER.log"
}

stop() {
    if ! pid_running "$PIDFILE" "$PATTERN"; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    # SIGTERM: OpenSearch closes its shards cleanly (flushing the translog).
    stop_pid "$PIDFILE" "$PATTERN" 60
    say "stopped"
}

status() {
    if pid_running "$PIDFILE" "$PATTERN" && curl_node -f "$URL" >/dev/null 2>&1; then
        say "running (pid $(read_pid "$PIDFILE")) OpenSearch $(version) at $URL; log: $LOGS_DIR/$CLUSTER.log"
    else
        say "not running"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    prepare) prepare ;;
    version) version ;;
    *) usage "$0" ;;
esac
