#!/usr/bin/env bash
# Install, start, check and stop the local Redis, Kafka and Cassandra that
# Reelwire's development and tests use. Every service listens on 127.0.0.1 only.
#
# Usage: scripts/services.sh install|start|status|stop
#
#   install  Install redis-server with apt-get and download the Kafka and
#            Cassandra jars from Maven Central. Skips every part already done.
#   start    Run install, start each service that is not already running and
#            wait until all three accept requests.
#   status   Print one line per service. Exits 0 when all three are running and
#            accept connections, 3 otherwise.
#   stop     Send SIGTERM to each service, wait, then send SIGKILL to any that
#            is still running.
#
# Jars, configuration, data, logs and pid files all live under .local/ in the
# repository root.
#
# Environment (defaults in brackets):
#   REELWIRE_REDIS_PORT [6379]              Redis port
#   REELWIRE_KAFKA_PORT [9092]              Kafka PLAINTEXT listener port
#   REELWIRE_KAFKA_CONTROLLER_PORT [9093]   Kafka KRaft controller port
#   REELWIRE_CASSANDRA_PORT [9042]          Cassandra CQL (native transport) port
#   REELWIRE_CASSANDRA_STORAGE_PORT [7000]  Cassandra internode storage port
#   REELWIRE_KAFKA_HEAP [512m]              Kafka JVM heap size (-Xms and -Xmx)
#   REELWIRE_CASSANDRA_HEAP [1G]            Cassandra JVM heap size (-Xms and -Xmx)
#   REELWIRE_REDIS_START_TIMEOUT [30]       Seconds to wait for Redis to reply to PING
#   REELWIRE_KAFKA_START_TIMEOUT [120]      Seconds to wait for Kafka to be ready
#   REELWIRE_CASSANDRA_START_TIMEOUT [240]  Seconds to wait for Cassandra to be ready
#   REELWIRE_STOP_TIMEOUT [60]              Seconds to wait after SIGTERM before SIGKILL
#   JAVA_HOME                               JDK to use; otherwise java from PATH

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
TEMPLATE_DIR="$SCRIPT_DIR/services"

LOCAL_DIR="$REPO_ROOT/.local"
LIB_DIR="$LOCAL_DIR/lib"
MAVEN_REPO_DIR="$LOCAL_DIR/m2"
CONF_DIR="$LOCAL_DIR/conf"
DATA_DIR="$LOCAL_DIR/data"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"

REDIS_PORT="${REELWIRE_REDIS_PORT:-6379}"
KAFKA_PORT="${REELWIRE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${REELWIRE_KAFKA_CONTROLLER_PORT:-9093}"
CASSANDRA_PORT="${REELWIRE_CASSANDRA_PORT:-9042}"
CASSANDRA_STORAGE_PORT="${REELWIRE_CASSANDRA_STORAGE_PORT:-7000}"
KAFKA_HEAP="${REELWIRE_KAFKA_HEAP:-512m}"
CASSANDRA_HEAP="${REELWIRE_CASSANDRA_HEAP:-1G}"
REDIS_START_TIMEOUT="${REELWIRE_REDIS_START_TIMEOUT:-30}"
KAFKA_START_TIMEOUT="${REELWIRE_KAFKA_START_TIMEOUT:-120}"
CASSANDRA_START_TIMEOUT="${REELWIRE_CASSANDRA_START_TIMEOUT:-240}"
STOP_TIMEOUT="${REELWIRE_STOP_TIMEOUT:-60}"

KAFKA_LIB_DIR="$LIB_DIR/kafka"
CASSANDRA_LIB_DIR="$LIB_DIR/cassandra"
KAFKA_DATA_DIR="$DATA_DIR/kafka/log"
KAFKA_CLUSTER_ID_FILE="$DATA_DIR/kafka/cluster-id"
CASSANDRA_DATA_DIR="$DATA_DIR/cassandra"
REDIS_DATA_DIR="$DATA_DIR/redis"

REDIS_LOG="$LOG_DIR/redis/redis.log"
KAFKA_LOG="$LOG_DIR/kafka/server.log"
KAFKA_CONSOLE_LOG="$LOG_DIR/kafka/kafka.out"
CASSANDRA_LOG="$LOG_DIR/cassandra/system.log"
CASSANDRA_CONSOLE_LOG="$LOG_DIR/cassandra/cassandra.out"

REDIS_PID_FILE="$RUN_DIR/redis.pid"
KAFKA_PID_FILE="$RUN_DIR/kafka.pid"
CASSANDRA_PID_FILE="$RUN_DIR/cassandra.pid"

# Lines that the services log once they accept clients: Kafka 3.9 logs its line
# from kafka.server.KafkaRaftServer, and Cassandra 5.0 from CassandraDaemon.
KAFKA_READY_LINE="Kafka Server started"
CASSANDRA_READY_LINE="Startup complete"

# The dependency plugin is pinned so that install gives the same result on every
# machine, whatever plugin version the local Maven would pick.
MAVEN_COPY_GOAL="org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
INSTALLED_MARKER=".installed"

# ---------------------------------------------------------------------------
# Messages and checks of the environment

say() {
    printf 'services: %s\n' "$*"
}

fail() {
    printf 'services: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'Usage: %s install|start|status|stop\n' "$0" >&2
}

require_positive_integer() {
    local name="$1" value="$2"
    if [[ ! "$value" =~ ^[1-9][0-9]*$ ]]; then
        fail "invalid $name '$value': expected a whole number of seconds greater than 0"
    fi
}

require_port() {
    local name="$1" value="$2"
    if [[ ! "$value" =~ ^[1-9][0-9]*$ ]] || ((value > 65535)); then
        fail "invalid $name '$value': expected a port number from 1 to 65535"
    fi
}

require_heap_size() {
    local name="$1" value="$2"
    if [[ ! "$value" =~ ^[1-9][0-9]*[kKmMgG]$ ]]; then
        fail "invalid $name '$value': expected a JVM memory size such as 512m or 1G"
    fi
}

validate_settings() {
    require_port REELWIRE_REDIS_PORT "$REDIS_PORT"
    require_port REELWIRE_KAFKA_PORT "$KAFKA_PORT"
    require_port REELWIRE_KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    require_port REELWIRE_CASSANDRA_PORT "$CASSANDRA_PORT"
    require_port REELWIRE_CASSANDRA_STORAGE_PORT "$CASSANDRA_STORAGE_PORT"
    require_heap_size REELWIRE_KAFKA_HEAP "$KAFKA_HEAP"
    require_heap_size REELWIRE_CASSANDRA_HEAP "$CASSANDRA_HEAP"
    require_positive_integer REELWIRE_REDIS_START_TIMEOUT "$REDIS_START_TIMEOUT"
    require_positive_integer REELWIRE_KAFKA_START_TIMEOUT "$KAFKA_START_TIMEOUT"
    require_positive_integer REELWIRE_CASSANDRA_START_TIMEOUT "$CASSANDRA_START_TIMEOUT"
    require_positive_integer REELWIRE_STOP_TIMEOUT "$STOP_TIMEOUT"

    local ports=("$REDIS_PORT" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$CASSANDRA_PORT" "$CASSANDRA_STORAGE_PORT")
    local unique_count
    unique_count="$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)"
    if ((unique_count != ${#ports[@]})); then
        fail "invalid port settings: the five ports must differ, got ${ports[*]}"
    fi
}

java_command() {
    if [[ -n "${JAVA_HOME:-}" ]]; then
        printf '%s\n' "$JAVA_HOME/bin/java"
    else
        printf '%s\n' java
    fi
}

# The Cassandra module flags below are the ones for Java 17, so any other
# version gets a warning.
check_java_version() {
    local java version_line major
    java="$(java_command)"
    if ! command -v "$java" >/dev/null 2>&1; then
        fail "java not found: install a JDK 17 (Debian: apt-get install -y openjdk-17-jdk-headless) or set JAVA_HOME"
    fi
    version_line="$("$java" -version 2>&1 | head -n 1)"
    major="$(sed -E 's/.*version "([0-9]+).*/\1/' <<<"$version_line")"
    if [[ "$major" != "17" ]]; then
        say "warning: expected Java 17, found: $version_line; Cassandra 5.0 may fail to start"
    fi
}

# Hold a lock for the whole run so that two concurrent starts cannot launch the
# same service twice. File descriptor 9 must not leak into the services, or the
# lock would stay held for as long as they run.
take_lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/services.lock"
    if ! flock -n 9; then
        fail "another scripts/services.sh is running on $LOCAL_DIR; wait for it to finish and try again"
    fi
}

# ---------------------------------------------------------------------------
# Process and port helpers

read_pid() {
    local pid_file="$1" pid=""
    if [[ -f "$pid_file" ]]; then
        pid="$(tr -dc '0-9' <"$pid_file")"
    fi
    printf '%s\n' "$pid"
}

# Succeed when the pid is alive and its command line contains the pattern, so
# that a pid number reused by an unrelated process is not mistaken for ours.
pid_matches() {
    local pid="$1" pattern="$2" command_line
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    command_line="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$command_line" == *"$pattern"* ]]
}

# Redis rewrites its process title to "redis-server 127.0.0.1:PORT", so its
# command line no longer contains the paths of this checkout.
redis_pattern() { printf '%s\n' "redis-server 127.0.0.1:$REDIS_PORT"; }
kafka_pattern() { printf '%s\n' "$CONF_DIR/kafka.properties"; }
cassandra_pattern() { printf '%s\n' "$CONF_DIR/cassandra.yaml"; }

# Print the pid of a running service of ours, or nothing. A pid file whose
# process has gone is removed.
running_pid() {
    local service="$1" pid_file pattern pid
    pid_file="$(pid_file_of "$service")"
    pattern="$("${service}_pattern")"
    pid="$(read_pid "$pid_file")"
    if pid_matches "$pid" "$pattern"; then
        printf '%s\n' "$pid"
    elif [[ -f "$pid_file" ]]; then
        rm -f "$pid_file"
    fi
}

pid_file_of() {
    case "$1" in
        redis) printf '%s\n' "$REDIS_PID_FILE" ;;
        kafka) printf '%s\n' "$KAFKA_PID_FILE" ;;
        cassandra) printf '%s\n' "$CASSANDRA_PID_FILE" ;;
    esac
}

port_of() {
    case "$1" in
        redis) printf '%s\n' "$REDIS_PORT" ;;
        kafka) printf '%s\n' "$KAFKA_PORT" ;;
        cassandra) printf '%s\n' "$CASSANDRA_PORT" ;;
    esac
}

log_of() {
    case "$1" in
        redis) printf '%s\n' "$REDIS_LOG" ;;
        kafka) printf '%s\n' "$KAFKA_LOG" ;;
        cassandra) printf '%s\n' "$CASSANDRA_LOG" ;;
    esac
}

console_log_of() {
    case "$1" in
        kafka) printf '%s\n' "$KAFKA_CONSOLE_LOG" ;;
        cassandra) printf '%s\n' "$CASSANDRA_CONSOLE_LOG" ;;
    esac
}

display_name() {
    case "$1" in
        redis) printf '%s\n' Redis ;;
        kafka) printf '%s\n' Kafka ;;
        cassandra) printf '%s\n' Cassandra ;;
    esac
}

port_open() {
    local port="$1"
    timeout 2 bash -c "</dev/tcp/127.0.0.1/$port" 2>/dev/null
}

file_size() {
    if [[ -f "$1" ]]; then
        stat -c %s "$1"
    else
        printf '0\n'
    fi
}

# Succeed when the file contains the text after the given byte offset. The log
# files keep the lines of earlier runs, and those must not count. If the file
# is now shorter than the offset, it was rotated, and all of it is new.
log_contains_since() {
    local file="$1" offset="$2" text="$3"
    [[ -f "$file" ]] || return 1
    if (($(file_size "$file") < offset)); then
        offset=0
    fi
    # grep reads to the end, unlike grep -q, so tail never gets SIGPIPE and the
    # pipeline's status under pipefail is grep's.
    tail -c "+$((offset + 1))" "$file" | grep -F -- "$text" >/dev/null
}

# Print the end of a log to stderr. Lines are cut at 500 characters because
# Cassandra logs its whole classpath on one line.
print_log_tail() {
    local file="$1"
    if [[ -s "$file" ]]; then
        printf 'services: last 20 lines of %s:\n' "$file" >&2
        tail -n 20 "$file" | cut -c 1-500 | sed 's/^/    /' >&2
    fi
}

# ---------------------------------------------------------------------------
# install

install_redis() {
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        say "redis-server is already installed ($(command -v redis-server))"
        return
    fi
    if ((EUID != 0)); then
        fail "redis-server is not installed; run 'sudo apt-get install -y redis-server' and try again"
    fi
    say "installing redis-server with apt-get"
    # The package index may be empty or stale on a fresh machine, so a failed
    # install is retried once after apt-get update.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; then
        say "apt-get install failed; running apt-get update and trying again"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null ||
            fail "apt-get install -y redis-server failed; see the apt-get output above"
    fi
}

# Copy the runtime dependencies of a pom into a lib folder. The marker file
# stores the pom's checksum, so an unchanged pom is never downloaded twice and
# an edited one (for example a version bump) is downloaded again.
install_jars() {
    local name="$1" pom="$2" lib_dir="$3" checksum
    checksum="$(sha256sum "$pom" | cut -d ' ' -f 1)"
    if [[ -f "$lib_dir/$INSTALLED_MARKER" && "$(cat "$lib_dir/$INSTALLED_MARKER")" == "$checksum" ]]; then
        say "$name jars are already in $lib_dir"
        return
    fi
    command -v mvn >/dev/null 2>&1 ||
        fail "mvn not found: install Maven (Debian: apt-get install -y maven) and try again"

    # Maven's output goes to a file and is shown only on failure, because even
    # with -q, Maven 3.8.7 as packaged by Debian 12 prints bare escape codes.
    local maven_log="$LOG_DIR/install/mvn-${name,,}.log"
    say "downloading $name jars into $lib_dir"
    rm -rf "$lib_dir"
    mkdir -p "$lib_dir" "$(dirname "$maven_log")"
    if ! mvn -B -q -f "$pom" -Dmaven.repo.local="$MAVEN_REPO_DIR" \
        "$MAVEN_COPY_GOAL" -DoutputDirectory="$lib_dir" -DincludeScope=runtime >"$maven_log" 2>&1 9>&-; then
        tail -n 40 "$maven_log" >&2
        fail "downloading $name jars failed (mvn -f $pom); see the Maven output above or in $maven_log, then run install again"
    fi
    printf '%s\n' "$checksum" >"$lib_dir/$INSTALLED_MARKER"
    say "$name: $(find "$lib_dir" -name '*.jar' | wc -l) jars installed"
}

command_install() {
    mkdir -p "$LOCAL_DIR"
    install_redis
    check_java_version
    install_jars Kafka "$TEMPLATE_DIR/kafka-pom.xml" "$KAFKA_LIB_DIR"
    install_jars Cassandra "$TEMPLATE_DIR/cassandra-pom.xml" "$CASSANDRA_LIB_DIR"
}

# ---------------------------------------------------------------------------
# Configuration

# Escape a value for the replacement side of a sed s||| command.
sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

# Write the template to the output with each @NAME@ replaced by the value of
# the shell variable NAME, and fail on any placeholder left outside comments.
render_template() {
    local template="$1" output="$2" name
    shift 2
    local sed_arguments=()
    for name in "$@"; do
        sed_arguments+=(-e "s|@${name}@|$(sed_escape "${!name}")|g")
    done
    sed "${sed_arguments[@]}" "$template" >"$output.tmp"
    if grep -n -E '^[^#]*@[A-Z][A-Z_]*@' "$output.tmp" >&2; then
        rm -f "$output.tmp"
        fail "unreplaced placeholder in $template (lines above)"
    fi
    mv "$output.tmp" "$output"
}

render_configs() {
    mkdir -p "$CONF_DIR"
    render_template "$TEMPLATE_DIR/kafka.properties" "$CONF_DIR/kafka.properties" \
        KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_DATA_DIR
    render_template "$TEMPLATE_DIR/cassandra.yaml" "$CONF_DIR/cassandra.yaml" \
        CASSANDRA_PORT CASSANDRA_STORAGE_PORT CASSANDRA_DATA_DIR
    cp "$TEMPLATE_DIR/log4j.properties" "$CONF_DIR/log4j.properties"
    cp "$TEMPLATE_DIR/logback.xml" "$CONF_DIR/logback.xml"
}

# ---------------------------------------------------------------------------
# start

# Run a command in the background, in a session of its own without a terminal,
# and write its pid to the pid file. The process writes its own pid just before
# it becomes the command, so the pid stays right even if setsid had to fork.
# Output goes to the output file. The previous run's output is kept as
# OUTPUT_FILE.1 because it may show why that run ended.
launch_detached() {
    local pid_file="$1" output_file="$2"
    shift 2
    if [[ -s "$output_file" ]]; then
        mv -f "$output_file" "$output_file.1"
    fi
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell.
    nohup setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$pid_file" "$@" \
        >"$output_file" 2>&1 </dev/null 9>&- &
}

# Print why a service must not be started, or nothing when it may start.
start_blocker() {
    local service="$1" pid port
    pid="$(running_pid "$service")"
    port="$(port_of "$service")"
    if [[ -n "$pid" ]]; then
        printf 'already running (pid %s)\n' "$pid"
    elif port_open "$port"; then
        printf 'port %s already accepts connections from a process this script did not start\n' "$port"
    fi
}

start_redis() {
    mkdir -p "$REDIS_DATA_DIR" "$(dirname "$REDIS_LOG")"
    # redis-server forks into the background itself and writes its own pid file.
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --daemonize yes --dir "$REDIS_DATA_DIR" --logfile "$REDIS_LOG" \
        --pidfile "$REDIS_PID_FILE" 9>&- ||
        fail "redis-server failed to start; see $REDIS_LOG"
}

kafka_java_options() {
    KAFKA_JAVA_OPTIONS=(
        "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP"
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
        -Djava.awt.headless=true
        "-Dlog4j.configuration=file:$CONF_DIR/log4j.properties"
        "-Dkafka.logs.dir=$(dirname "$KAFKA_LOG")"
        -cp "$KAFKA_LIB_DIR/*"
    )
}

# Format the KRaft storage once. The cluster id is saved so that every later
# start formats nothing: formatting existing data with a different id fails.
format_kafka_storage() {
    local java cluster_id
    java="$(java_command)"
    mkdir -p "$KAFKA_DATA_DIR" "$(dirname "$KAFKA_LOG")"
    if [[ -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
        if [[ ! -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
            sed -n 's/^cluster\.id=//p' "$KAFKA_DATA_DIR/meta.properties" >"$KAFKA_CLUSTER_ID_FILE"
        fi
        return
    fi

    local tool_options=(
        -Xmx256m
        "-Dlog4j.configuration=file:$CONF_DIR/log4j.properties"
        "-Dkafka.logs.dir=$(dirname "$KAFKA_LOG")"
        -cp "$KAFKA_LIB_DIR/*"
    )
    if [[ ! -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
        cluster_id="$("$java" "${tool_options[@]}" kafka.tools.StorageTool random-uuid 9>&- |
            grep -E '^[A-Za-z0-9_-]{22}$' | tail -n 1)" ||
            fail "kafka.tools.StorageTool random-uuid printed no cluster id"
        printf '%s\n' "$cluster_id" >"$KAFKA_CLUSTER_ID_FILE"
    fi
    cluster_id="$(cat "$KAFKA_CLUSTER_ID_FILE")"
    say "formatting Kafka storage in $KAFKA_DATA_DIR (cluster id $cluster_id)"
    "$java" "${tool_options[@]}" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$CONF_DIR/kafka.properties" --ignore-formatted 9>&- >/dev/null ||
        fail "formatting Kafka storage failed; see $KAFKA_LOG"
}

start_kafka() {
    local java
    java="$(java_command)"
    format_kafka_storage
    kafka_java_options
    launch_detached "$KAFKA_PID_FILE" "$KAFKA_CONSOLE_LOG" \
        "$java" "${KAFKA_JAVA_OPTIONS[@]}" kafka.Kafka "$CONF_DIR/kafka.properties"
}

# Cassandra uses JDK internals that Java 17 closes by default. These are the
# module flags of conf/jvm17-server.options in the Cassandra source tree.
cassandra_module_options() {
    local export_packages=(
        java.base/jdk.internal.misc
        java.management.rmi/com.sun.jmx.remote.internal.rmi
        java.rmi/sun.rmi.registry
        java.rmi/sun.rmi.server
        java.sql/java.sql
        java.base/java.lang.ref
        jdk.unsupported/sun.misc
        jdk.compiler/com.sun.tools.javac.file
        jdk.attach/sun.tools.attach
    )
    local open_packages=(
        java.base/java.lang.module
        java.base/jdk.internal.loader
        java.base/jdk.internal.ref
        java.base/jdk.internal.reflect
        java.base/jdk.internal.math
        java.base/jdk.internal.module
        java.base/jdk.internal.util.jar
        jdk.management/com.sun.management.internal
        java.base/sun.nio.ch
        java.base/java.io
        java.base/java.lang.reflect
        jdk.compiler/com.sun.tools.javac
        java.base/java.lang
        java.base/java.util
        java.base/java.nio
    )
    local package
    for package in "${export_packages[@]}"; do
        CASSANDRA_JAVA_OPTIONS+=(--add-exports "$package=ALL-UNNAMED")
    done
    for package in "${open_packages[@]}"; do
        CASSANDRA_JAVA_OPTIONS+=(--add-opens "$package=ALL-UNNAMED")
    done
}

cassandra_java_options() {
    local jamm_jar
    jamm_jar="$(find "$CASSANDRA_LIB_DIR" -maxdepth 1 -name 'jamm-*.jar' | head -n 1)"
    [[ -n "$jamm_jar" ]] ||
        fail "jamm jar not found in $CASSANDRA_LIB_DIR; delete that folder and run install again"

    CASSANDRA_JAVA_OPTIONS=(
        "-Xms$CASSANDRA_HEAP" "-Xmx$CASSANDRA_HEAP"
        -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxGCPauseMillis=300
        # Cassandra warns that a JVM which goes on after OutOfMemoryError can
        # corrupt data.
        -XX:+ExitOnOutOfMemoryError
        # Cassandra 5.0 measures object sizes with jamm, which its own launcher
        # loads as a Java agent.
        "-javaagent:$jamm_jar"
        -Djdk.attach.allowAttachSelf=true
        -Djava.net.preferIPv4Stack=true
        -Dio.netty.tryReflectionSetAccessible=true
        -Dio.netty.allocator.useCacheForAllThreads=true
        -Dio.netty.allocator.maxOrder=11
        "-Dcassandra.config=file://$CONF_DIR/cassandra.yaml"
        "-Dcassandra.storagedir=$CASSANDRA_DATA_DIR"
        "-Dcassandra.logdir=$(dirname "$CASSANDRA_LOG")"
        "-Dlogback.configurationFile=$CONF_DIR/logback.xml"
        "-Dcassandra.triggers_dir=$CONF_DIR/cassandra-triggers"
        -Dcassandra-foreground=yes
        # A single node has no peers whose gossip could settle.
        -Dcassandra.skip_wait_for_gossip_to_settle=0
    )
    cassandra_module_options
    CASSANDRA_JAVA_OPTIONS+=(-cp "$CASSANDRA_LIB_DIR/*")
}

start_cassandra() {
    local java
    java="$(java_command)"
    mkdir -p "$CASSANDRA_DATA_DIR" "$(dirname "$CASSANDRA_LOG")" "$CONF_DIR/cassandra-triggers"
    cassandra_java_options
    launch_detached "$CASSANDRA_PID_FILE" "$CASSANDRA_CONSOLE_LOG" \
        "$java" "${CASSANDRA_JAVA_OPTIONS[@]}" org.apache.cassandra.service.CassandraDaemon
}

# Per service, set by start_service and read by the readiness checks.
declare -A STARTED_NOW=()
declare -A LOG_OFFSET=()
declare -A LAUNCHED_AT=()

start_service() {
    local service="$1" blocker name
    name="$(display_name "$service")"
    blocker="$(start_blocker "$service")"
    STARTED_NOW[$service]=0
    LAUNCHED_AT[$service]=$SECONDS
    if [[ -n "$blocker" ]]; then
        say "$name: $blocker; not starting it"
        return
    fi
    LOG_OFFSET[$service]="$(file_size "$(log_of "$service")")"
    say "starting $name on 127.0.0.1:$(port_of "$service") (log: $(log_of "$service"))"
    "start_$service"
    STARTED_NOW[$service]=1
}

# Succeed when the service accepts requests. A service started by this run must
# also have logged its ready line since the launch.
service_ready() {
    local service="$1" port
    port="$(port_of "$service")"
    case "$service" in
        redis)
            [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]]
            ;;
        kafka | cassandra)
            local ready_line
            case "$service" in
                kafka) ready_line=$KAFKA_READY_LINE ;;
                cassandra) ready_line=$CASSANDRA_READY_LINE ;;
            esac
            if ((STARTED_NOW[$service])) &&
                ! log_contains_since "$(log_of "$service")" "${LOG_OFFSET[$service]}" "$ready_line"; then
                return 1
            fi
            port_open "$port"
            ;;
    esac
}

report_start_failure() {
    local service="$1" reason="$2" name
    name="$(display_name "$service")"
    printf 'services: %s %s; log: %s\n' "$name" "$reason" "$(log_of "$service")" >&2
    print_log_tail "$(log_of "$service")"
    local console_log
    console_log="$(console_log_of "$service")"
    if [[ -n "$console_log" ]]; then
        print_log_tail "$console_log"
    fi
}

# Wait until the service is ready or its deadline passes. The deadline counts
# from the launch, so services that start in parallel do not add up their
# timeouts.
wait_until_ready() {
    local service="$1" timeout="$2" name pid
    name="$(display_name "$service")"
    while ((SECONDS < LAUNCHED_AT[$service] + timeout)); do
        if service_ready "$service"; then
            say "$name is ready on 127.0.0.1:$(port_of "$service")"
            return 0
        fi
        # The pid file appears only once the process runs (Redis writes it
        # after it forks), so a missing pid counts as an exit only after 5 s.
        if ((STARTED_NOW[$service] && SECONDS - LAUNCHED_AT[$service] > 5)) &&
            [[ -z "$(running_pid "$service")" ]]; then
            report_start_failure "$service" "exited during start-up"
            return 1
        fi
        sleep 1
    done
    pid="$(running_pid "$service")"
    report_start_failure "$service" "was not ready within $timeout s (REELWIRE_${service^^}_START_TIMEOUT)"
    if [[ -n "$pid" ]]; then
        say "$name is still running as pid $pid; run 'scripts/services.sh stop' to stop it"
    fi
    return 1
}

command_start() {
    command_install
    render_configs

    local start_time=$SECONDS
    # Redis is up within a second. Cassandra is the slowest, so it is launched
    # before Kafka's storage formatting, and both JVMs then start in parallel.
    start_service redis
    start_service cassandra
    start_service kafka

    local failed=0
    wait_until_ready redis "$REDIS_START_TIMEOUT" || failed=1
    wait_until_ready kafka "$KAFKA_START_TIMEOUT" || failed=1
    wait_until_ready cassandra "$CASSANDRA_START_TIMEOUT" || failed=1
    if ((failed)); then
        fail "start failed; the messages above name each service that is not ready"
    fi
    say "all services are ready ($((SECONDS - start_time)) s)"
}

# ---------------------------------------------------------------------------
# status

command_status() {
    local service pid port state note all_running=1
    for service in redis kafka cassandra; do
        pid="$(running_pid "$service")"
        port="$(port_of "$service")"
        note=""
        if [[ -n "$pid" ]] && port_open "$port"; then
            state=running
        elif [[ -n "$pid" ]]; then
            state=starting
            note="port not open yet"
        elif port_open "$port"; then
            state=stopped
            note="but a process this script did not start listens on the port"
        else
            state=stopped
        fi
        [[ "$state" == running ]] || all_running=0

        printf 'services: %-9s %-8s pid %-7s port %s' "$service" "$state" "${pid:--}" "$port"
        if [[ -n "$note" ]]; then
            printf ' (%s)' "$note"
        fi
        printf '\n'
    done
    if ((!all_running)); then
        return 3
    fi
}

# ---------------------------------------------------------------------------
# stop

command_stop() {
    local service pid name
    local -A stopping=()
    for service in redis kafka cassandra; do
        name="$(display_name "$service")"
        pid="$(running_pid "$service")"
        if [[ -z "$pid" ]]; then
            say "$name is not running"
            continue
        fi
        say "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        stopping[$service]=$pid
    done

    local deadline=$((SECONDS + STOP_TIMEOUT))
    while ((${#stopping[@]} > 0 && SECONDS < deadline)); do
        for service in "${!stopping[@]}"; do
            if ! kill -0 "${stopping[$service]}" 2>/dev/null; then
                say "$(display_name "$service") stopped"
                rm -f "$(pid_file_of "$service")"
                unset "stopping[$service]"
            fi
        done
        ((${#stopping[@]} == 0)) || sleep 0.5
    done

    for service in "${!stopping[@]}"; do
        pid="${stopping[$service]}"
        if ! kill -0 "$pid" 2>/dev/null; then
            say "$(display_name "$service") stopped"
            rm -f "$(pid_file_of "$service")"
            continue
        fi
        say "$(display_name "$service") (pid $pid) did not stop within $STOP_TIMEOUT s of SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do
            sleep 0.2
        done
        rm -f "$(pid_file_of "$service")"
    done
}

# ---------------------------------------------------------------------------

main() {
    if (($# != 1)); then
        usage
        exit 2
    fi
    validate_settings
    case "$1" in
        install)
            take_lock
            command_install
            ;;
        start)
            take_lock
            command_start
            ;;
        status)
            local status=0
            command_status || status=$?
            exit "$status"
            ;;
        stop)
            take_lock
            command_stop
            ;;
        -h | --help | help)
            usage
            ;;
        *)
            printf "services: unknown command '%s'\n" "$1" >&2
            usage
            exit 2
            ;;
    esac
}

main "$@"
