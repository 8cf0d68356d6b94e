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
# transport module), which is unpacked once into tests/services/.cache/ and
# run on the machine's Java 17. The standard modules the tests may need
# (Painless, common analysis, reindex/_update_by_query/_delete_by_query,
# mapper-extras, parent-join, ingest-common, geo) are added from their jars
# on Maven Central; see opensearch-modules/pom.xml.
#
# With NETWAR_OPENSEARCH_SECURE=1 (which is what opensearch-secure.sh sets)
# the same script runs a second, separate node on 127.0.0.1:9203 with the
# OpenSearch security plugin from Maven Central: HTTPS with a test CA made
# here with openssl, and HTTP basic authentication.
#
# Usage: tests/services/opensearch.sh {start|stop|restart|status|prepare}
# Environment:
#   NETWAR_OPENSEARCH_VERSION  default 2.19.4 (see README.md for why not newer)
#   NETWAR_OPENSEARCH_MODULES  1 (default) adds the standard modules; 0 runs
#                              the integration-test zip as it comes
#   NETWAR_TEST_OPENSEARCH_PORT  HTTP port, default 9201 (the transport port
#                                is always the HTTP port + 100)
#   NETWAR_TEST_OPENSEARCH_SECURE_PORT  HTTPS port when secure, default 9203
#   NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD  password of user admin when secure

set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# 2.19.4 is the newest 2.19 release for which Maven Central serves both the
# server and the security plugin (2.19.5 and 2.19.6 exist for the server
# only), and a plugin must match the server version exactly.
VERSION="${NETWAR_OPENSEARCH_VERSION:-2.19.4}"
SECURITY_PLUGIN_VERSION="$VERSION.0"
SECURE="${NETWAR_OPENSEARCH_SECURE:-0}"
MODULES="${NETWAR_OPENSEARCH_MODULES:-1}"

# The unpacked distribution; "-bare" when it is to stay without modules.
PLAIN_HOME_DIR="$CACHE_DIR/opensearch-$VERSION"
if [[ "$MODULES" != 1 ]]; then
    PLAIN_HOME_DIR="$PLAIN_HOME_DIR-bare"
fi

if [[ "$SECURE" == 1 ]]; then
    SERVICE=opensearch-secure
    PORT="${NETWAR_TEST_OPENSEARCH_SECURE_PORT:-9203}"
    TRANSPORT_PORT=$((PORT + 100))
    HOME_DIR="$PLAIN_HOME_DIR-security"
    SCHEME=https
    ADMIN_USER=admin
    ADMIN_PASSWORD="${NETWAR_TEST_OPENSEARCH_SECURE_PASSWORD:-netwar-Test-Passw0rd}"
else
    SERVICE=opensearch
    PORT="${NETWAR_TEST_OPENSEARCH_PORT:-9201}"
    TRANSPORT_PORT=$((PORT + 100))
    HOME_DIR="$PLAIN_HOME_DIR"
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
    lock_cache "$HOME_DIR.lock"
    # Another script may have prepared it while this one waited for the lock.
    if [[ -x "$HOME_DIR/bin/opensearch" ]]; then
        unlock_cache
        return 0
    fi
    rm -rf "$HOME_DIR.partial"
    if [[ "$SECURE" == 1 ]]; then
        # The secure node's home is the plain one plus the security plugin
        # (OpenSearch has no setting for a separate plugins folder).
        NETWAR_OPENSEARCH_SECURE=0 "$SERVICES_DIR/opensearch.sh" prepare
        cp -a "$PLAIN_HOME_DIR" "$HOME_DIR.partial"
        install_security_plugin "$HOME_DIR.partial"
        mv "$HOME_DIR.partial" "$HOME_DIR"
        unlock_cache
        say "installed the security plugin into a copy of OpenSearch $VERSION, $HOME_DIR"
        return 0
    fi
    local coordinates="org.opensearch.distribution.integ-test-zip:opensearch:$VERSION:zip" zip
    say "getting $coordinates (Maven Central, cached in ~/.m2)"
    if ! zip="$(maven_artifact "$coordinates")"; then
        show_log_tail "$RUN_DIR/maven.log" 20
        die "Maven Central does not serve $coordinates"
    fi
    mkdir -p "$CACHE_DIR"
    unpack_zip "$zip" "$HOME_DIR.partial"
    if [[ "$MODULES" == 1 ]]; then
        add_modules "$HOME_DIR.partial"
    fi
    mv "$HOME_DIR.partial" "$HOME_DIR"
    unlock_cache
    say "unpacked OpenSearch $VERSION into $HOME_DIR"
}

# The standard modules, one a line: folder|plugin class|extended plugins|
# description. The folder names and classes are those of OpenSearch's own
# distribution; the jars come from opensearch-modules/pom.xml.
MODULE_TABLE="
lang-painless|org.opensearch.painless.PainlessPlugin||Painless scripting language
analysis-common|org.opensearch.analysis.common.CommonAnalysisPlugin|lang-painless|Common analysis components
reindex|org.opensearch.index.reindex.ReindexPlugin||Reindex, update by query and delete by query
mapper-extras|org.opensearch.index.mapper.MapperExtrasPlugin||Additional field types
parent-join|org.opensearch.join.ParentJoinPlugin||The join field type
ingest-common|org.opensearch.ingest.common.IngestCommonPlugin|lang-painless|Common ingest processors
geo|org.opensearch.geo.GeoModulePlugin||geo_shape and geo aggregations
"

# add_modules HOME: puts the standard modules into HOME/modules/. The jars
# are gathered once per version into the cache and copied from there, so the
# plain and the secure node share one download.
add_modules() {
    local home="$1" modules="$CACHE_DIR/opensearch-modules-$VERSION"
    if [[ ! -f "$modules/.complete" ]]; then
        require_maven
        say "fetching the standard OpenSearch modules from Maven Central"
        rm -rf "$modules"
        local log="$RUN_DIR/maven.log"
        if ! mvn -B -q -f "$SERVICES_DIR/opensearch-modules/pom.xml" package \
                -Dopensearch.version="$VERSION" -Dmodules.directory="$modules" \
                -Dmodules.build.directory="$CACHE_DIR/opensearch-modules-build" >>"$log" 2>&1; then
            show_log_tail "$log" 30
            die "could not fetch the OpenSearch modules (NETWAR_OPENSEARCH_MODULES=0 runs without them)"
        fi
        rm -rf "$CACHE_DIR/opensearch-modules-build"
        touch "$modules/.complete"
    fi
    local name class extended description
    while IFS='|' read -r name class extended description; do
        [[ -n "$name" ]] || continue
        mkdir -p "$home/modules/$name"
        cp "$modules/$name/"*.jar "$home/modules/$name/"
        cat >"$home/modules/$name/plugin-descriptor.properties" <<EOF
description=$description
version=$VERSION
name=$name
classname=$class
java.version=11
opensearch.version=$VERSION
custom.foldername=
extended.plugins=$extended
has.native.controller=false
EOF
    done <<<"$MODULE_TABLE"
    # Java security manager grants, as in OpenSearch's own distribution:
    # Painless compiles scripts into classes; reindex's REST client opens
    # connections (reindex from a remote cluster).
    cat >"$home/modules/lang-painless/plugin-security.policy" <<'EOF'
grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
    cat >"$home/modules/reindex/plugin-security.policy" <<'EOF'
grant {
  permission java.net.SocketPermission "*", "connect";
};
EOF
}

install_security_plugin() {
    local home="$1" zip
    local coordinates="org.opensearch.plugin:opensearch-security:$SECURITY_PLUGIN_VERSION:zip"
    say "getting $coordinates (Maven Central, cached in ~/.m2)"
    if ! zip="$(maven_artifact "$coordinates")"; then
        show_log_tail "$RUN_DIR/maven.log" 20
        die "Maven Central does not serve $coordinates"
    fi
    # --batch: accept the plugin's request for extra Java permissions
    # without asking (there is no terminal in CI).
    if ! OPENSEARCH_JAVA_HOME="$(java_home)" "$home/bin/opensearch-plugin" install --batch "file://$zip" \
            >>"$RUN_DIR/install.log" 2>&1; then
        show_log_tail "$RUN_DIR/install.log" 20
        die "could not install the security plugin; see $RUN_DIR/install.log"
    fi
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
    # A pid file left by a crashed run would look like a dead new server.
    rm -f "$PIDFILE"
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
            "$HOME_DIR/bin/opensearch" -d -p "$PIDFILE" </dev/null >>"$LOG" 2>&1 8>&- 9>&-; then
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
        if server_died "$i"; then
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
    start) lock_service; start ;;
    stop) lock_service; stop ;;
    restart) lock_service; stop; start ;;
    status) status ;;
    prepare) prepare ;;
    version) version ;;
    *) usage "$0" ;;
esac
