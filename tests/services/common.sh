# shellcheck shell=bash
#
# Shared code for the scripts in tests/services/ that install and run the
# servers used by netwar's integration tests. It is sourced, never run.
#
# Layout (both folders are git-ignored):
#   tests/services/run/     state of the running servers: pid files, data,
#                           logs and the env files written by up.sh
#   tests/services/.cache/  unpacked server distributions, the OpenSearch
#                           modules and the built Neo4j launcher; Maven's own
#                           download cache (~/.m2) keeps the archives, so a
#                           fresh clone on the same machine does not download
#                           them again
#
# Everything here must work on a clean Debian 12 machine, as root and without
# a terminal (CI), and also for a developer running as an ordinary user.

SERVICES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${NETWAR_SERVICES_RUN_DIR:-$SERVICES_DIR/run}"
CACHE_DIR="${NETWAR_SERVICES_CACHE_DIR:-$SERVICES_DIR/.cache}"

# Elasticsearch and OpenSearch refuse to run as root. When these scripts run
# as root (as CI does), the search engines run as this system user instead.
SEARCH_USER="netwar-search"

# Pinned versions of the plugin used to pull artifacts from Maven Central, so
# the result does not depend on the defaults of the installed Maven.
MAVEN_DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- messages

# Every line a script prints starts with the service name, because up.sh
# runs several of them at once.
say() { printf '[%s] %s\n' "${SERVICE:-services}" "$*"; }
warn() { printf '[%s] warning: %s\n' "${SERVICE:-services}" "$*" >&2; }
die() { printf '[%s] error: %s\n' "${SERVICE:-services}" "$*" >&2; exit 1; }

# Print the last lines of a log file after a failure, so CI output shows the
# cause without anyone having to fetch the file.
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -s "$file" ]]; then
        printf '[%s] ---- last %s lines of %s ----\n' "${SERVICE:-services}" "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf '[%s] ---- end of %s ----\n' "${SERVICE:-services}" "$file" >&2
    fi
}

# -------------------------------------------------------- system packages

is_root() { [[ "$(id -u)" -eq 0 ]]; }

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install PACKAGE...: installs the packages that are missing. The package
# lists of a fresh machine may be absent or stale, so 'apt-get update' runs
# first, but only when something has to be installed.
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    is_root || die "missing Debian packages: ${missing[*]} (install them, or run this script as root)"
    say "installing Debian packages: ${missing[*]}"
    local log="$RUN_DIR/apt.log"
    mkdir -p "$RUN_DIR"
    # Several scripts may install at once when started in parallel; dpkg's
    # lock makes the second one wait instead of failing.
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -q \
            && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"; } \
            >>"$log" 2>&1; then
        show_log_tail "$log"
        die "apt-get could not install: ${missing[*]}"
    fi
}

# require_command COMMAND PACKAGE: makes sure COMMAND exists, installing the
# Debian package that provides it if needed.
require_command() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found even after installing $2"
}

# ------------------------------------------------------------------- Java

# The JVM servers need Java 17 or newer. Debian 12's openjdk-17 is used when
# no Java is installed; a newer Java already on the machine is fine too.
require_java() {
    local need_jdk="${1:-}"
    if ! command -v java >/dev/null 2>&1; then
        apt_install openjdk-17-jre-headless
    fi
    if [[ "$need_jdk" == jdk ]] && ! command -v javac >/dev/null 2>&1; then
        apt_install openjdk-17-jdk-headless
    fi
    local major
    major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
    [[ -n "$major" && "${major%%.*}" -ge 17 ]] || die "Java 17 or newer is required (found: ${major:-none})"
}

# The directory above bin/java, which OpenSearch (OPENSEARCH_JAVA_HOME) and
# Elasticsearch (ES_JAVA_HOME) need: their integration-test archives carry no
# JDK of their own.
java_home() {
    local java
    java="$(readlink -f "$(command -v java)")"
    dirname "$(dirname "$java")"
}

require_maven() {
    require_java jdk
    require_command mvn maven
}

# Maven's local repository, where downloaded artifacts are kept between runs
# (and between clones of the repository). Only consulted directly to skip a
# Maven run when the artifact is already there.
MAVEN_LOCAL_REPO="${NETWAR_MAVEN_LOCAL_REPO:-$HOME/.m2/repository}"

# maven_artifact GROUP:ARTIFACT:VERSION:TYPE: prints the path of the artifact
# file, downloading it from Maven Central first if it is not in the local
# repository yet. Returns 1, quietly, if Maven Central does not serve it; the
# log is in $RUN_DIR/maven.log.
maven_artifact() {
    local coordinates="$1" group artifact version type
    IFS=: read -r group artifact version type <<<"$coordinates"
    local file="$MAVEN_LOCAL_REPO/${group//.//}/$artifact/$version/$artifact-$version.$type"
    # Starting Maven takes seconds (far more on a busy machine); skip it when
    # a previous run left the file (and its checksum, written after it).
    if [[ -s "$file" && -s "$file.sha1" ]]; then
        echo "$file"
        return 0
    fi
    # stdout carries the result; messages about installing Maven go to stderr.
    require_maven >&2
    local log="$RUN_DIR/maven.log" downloads="$CACHE_DIR/downloads"
    mkdir -p "$RUN_DIR" "$downloads"
    echo "== $(date -u +%FT%TZ) fetch $coordinates" >>"$log"
    # -U: an artifact that was missing once is not cached as missing, so a
    # version published later is picked up.
    if ! mvn -B -q -U "$MAVEN_DEPENDENCY_PLUGIN:copy" \
            -Dartifact="$coordinates" -DoutputDirectory="$downloads" -Dmdep.overWriteReleases=true \
            >>"$log" 2>&1; then
        return 1
    fi
    # Normally the file is now in the local repository too; the copy in
    # $downloads covers a Maven configured with another local repository.
    if [[ -s "$file" ]]; then
        rm -f "$downloads/$artifact-$version.$type"
        echo "$file"
    else
        echo "$downloads/$artifact-$version.$type"
    fi
}

# unpack_zip ZIP DIRECTORY: unpacks into DIRECTORY atomically: a half-unpacked
# distribution (after an interrupted run) is never mistaken for a good one.
unpack_zip() {
    local zip="$1" target="$2" tmp
    require_command unzip unzip
    tmp="$(mktemp -d "$(dirname "$target")/.unpack.XXXXXX")"
    if ! unzip -q "$zip" -d "$tmp"; then
        rm -rf "$tmp"
        die "could not unpack $zip"
    fi
    # The archives hold a single top-level folder, e.g. opensearch-2.19.4/.
    local inner
    inner="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
    rm -rf "$target"
    mv "$inner" "$target"
    rm -rf "$tmp"
}

# ------------------------------------------------------------------ locks
#
# Tests may restart a server while another test process starts it, and two
# scripts may prepare the same cache folder at once. Two flock(1) locks keep
# them apart: file descriptor 9 for one service's start/stop, descriptor 8
# for the preparation of one cache folder. Servers must not inherit either
# (they would hold the lock for their whole life), so every launch closes
# both: 8>&- 9>&-.

# lock_service: serializes start/stop/restart of $SERVICE; held until the
# script exits.
lock_service() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/$SERVICE.lock"
    flock -w 900 9 || die "another start/stop of $SERVICE has been running for 15 minutes"
}

# lock_cache FILE: serializes the preparation of one cache folder (FILE is
# its lock file); unlock_cache releases it.
lock_cache() {
    mkdir -p "$(dirname "$1")"
    exec 8>"$1"
    flock -w 1800 8 || die "another preparation of $1 has been running for 30 minutes"
}
unlock_cache() { exec 8>&-; }

# --------------------------------------------------------------- processes

# pid_running PIDFILE PATTERN: true if the pid file names a live process
# whose command line contains PATTERN. The pattern guards against a stale pid
# file whose number now belongs to an unrelated process.
pid_running() {
    local pidfile="$1" pattern="$2" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    [[ -n "$pid" ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern"
}

read_pid() { tr -dc '0-9' <"$1"; }

# stop_pid PIDFILE PATTERN [TIMEOUT]: SIGTERM (a clean shutdown, which
# flushes data), then SIGKILL if the process is still there after TIMEOUT
# seconds. Only the process named in our own pid file is ever signalled.
stop_pid() {
    local pidfile="$1" pattern="$2" timeout="${3:-60}" pid i
    if ! pid_running "$pidfile" "$pattern"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(read_pid "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "pid $pid did not stop within ${timeout}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$pidfile"
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# refuse_busy_port PORT WHAT: a server of ours that is not running must not
# find its port taken, or the tests would silently talk to someone else's.
refuse_busy_port() {
    if port_open "$1"; then
        die "port $1 is already in use by another program; cannot start $2 there"
    fi
}

# ------------------------------------------ running the search engines

# AS_SEARCH_USER: the command prefix that runs a command as $SEARCH_USER
# when we are root, and empty otherwise. An array rather than a function so
# that it can follow 'setsid', which runs programs only.
AS_SEARCH_USER=()
if is_root; then
    AS_SEARCH_USER=(runuser -u "$SEARCH_USER" --)
fi

# copy_missing SOURCE... DIRECTORY: copies the files that DIRECTORY lacks
# (cp -n's exit status differs between coreutils versions).
copy_missing() {
    local dir="${*: -1}" file
    for file in "${@:1:$#-1}"; do
        [[ -e "$dir/$(basename "$file")" ]] || cp "$file" "$dir/"
    done
}

# ensure_search_user: as root, creates $SEARCH_USER (and its group) unless it
# exists. up.sh calls it from each search engine's `prepare`, which run one at
# a time, so the engines that start side by side find the user ready.
ensure_search_user() {
    is_root || return 0
    id -u "$SEARCH_USER" >/dev/null 2>&1 && getent group "$SEARCH_USER" >/dev/null && return 0
    say "creating system user $SEARCH_USER to run the search engines (they refuse to run as root)"
    # A script started by hand beside another may still race us: useradd then fails, and the
    # other one's user and group appear within moments. Only their absence is an error.
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$SEARCH_USER" 2>/dev/null || true
    local tries
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        if id -u "$SEARCH_USER" >/dev/null 2>&1 && getent group "$SEARCH_USER" >/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    die "could not create the system user $SEARCH_USER"
}

# prepare_search_user DIR...: as root, makes sure $SEARCH_USER exists, gives it
# the given state directories, and makes sure it can reach them and the
# unpacked distributions. (An unprivileged developer runs the servers as
# themself and nothing here applies.)
prepare_search_user() {
    is_root || return 0
    ensure_search_user
    local dir
    for dir in "$@"; do
        mkdir -p "$dir"
        chown -R "$SEARCH_USER:$SEARCH_USER" "$dir"
    done
    # The user needs to pass through every folder above the distributions
    # and its state. On a machine where one of them is closed to other users
    # (mode 700, like /root), open it for traversal only (o+x: no listing, no
    # reading).
    local path
    for path in "$CACHE_DIR" "$@"; do
        while [[ "$path" != / ]]; do
            if ! runuser -u "$SEARCH_USER" -- test -x "$path"; then
                say "allowing $SEARCH_USER to pass through $path (chmod o+x)"
                chmod o+x "$path"
            fi
            path="$(dirname "$path")"
        done
    done
}

# server_died SECONDS: for a server that daemonizes and writes its own pid
# file ($PIDFILE), true if it has died SECONDS after launch. The JVM writes
# the file only after its first steps, which take long on a busy machine, so
# a missing file means "still starting" for the first 90 seconds.
server_died() {
    local elapsed="$1"
    if [[ -s "$PIDFILE" ]]; then
        ! pid_running "$PIDFILE" "$PATTERN"
    else
        [[ "$elapsed" -gt 90 ]]
    fi
}

# json_field FIELD: reads a JSON document on stdin and prints the value of a
# "FIELD": "value" string, good enough for the small documents used here.
json_field() {
    sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1
}

# usage NAME: the common command-line contract of the service scripts.
usage() {
    echo "usage: $1 {start|stop|restart|status|prepare|version}" >&2
    echo "  prepare  install/download/build what the server needs, without starting it" >&2
    echo "  status   exit status 0 running, 3 not running (4: not available, Elasticsearch only)" >&2
    echo "  version  print the version of the running server" >&2
    exit 2
}
