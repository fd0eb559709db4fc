# shellcheck shell=bash
# shellcheck disable=SC2034,SC2153  # globals shared with compare.sh, which sources this
# Shared by loadtest/compare.sh: building and installing the tools, starting
# and stopping proxies and peers, reading CPU time and memory from /proc.
# Sourced, not run. Expects `set -euo pipefail` and these globals from the
# caller: ROOT (repository), LT (loadtest/), OUT (run directory).

# --- addresses ------------------------------------------------------------------
# Loopback addresses of our own, so a run does not collide with tests that
# bind 127.0.0.1 (every 127.0.0.0/8 address is local on Linux).
PROXY_IP=127.77.0.1
PROXY_PORT=5060
UAS_IP=127.77.0.2
UAS_PORT=5070
UAS2_IP=127.77.0.3
UAS2_PORT=5070
UAC_IP=127.77.0.4
UAC_PORT=5080
KAMAILIO_MPATH=${KAMAILIO_MPATH:-/usr/lib/x86_64-linux-gnu/kamailio/modules/}

RINGSIP_BIN=$ROOT/target/release/ringsip
RELAY_BIN=$LT/relay/target/release/ringsip-relay
GEN_BIN=$LT/gen/target/release/ringsip-gen

die() {
    echo "loadtest: $*" >&2
    exit 1
}
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Installs sipp and Kamailio when they are missing (as .ci/run does).
install_tools() {
    local -a packages=()
    command -v sipp >/dev/null || packages+=(sip-tester)
    command -v kamailio >/dev/null || [[ -x /usr/sbin/kamailio ]] || packages+=(kamailio)
    command -v taskset >/dev/null || packages+=(util-linux)
    command -v ss >/dev/null || packages+=(iproute2)
    if ((${#packages[@]} > 0)); then
        log "apt-get install ${packages[*]}"
        as_root apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
    fi
    command -v sipp >/dev/null || die "sipp missing after installing sip-tester"
    KAMAILIO=$(command -v kamailio || echo /usr/sbin/kamailio)
    [[ -x $KAMAILIO ]] || die "kamailio missing after installing it"
    [[ -d $KAMAILIO_MPATH ]] || die "no Kamailio modules in $KAMAILIO_MPATH (set KAMAILIO_MPATH)"
}

# Builds ringsip (release) and the loadtest tools (their own workspaces).
build_tools() {
    log "building ringsip, relay and generator (release)"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    cargo build --release --quiet --manifest-path "$LT/relay/Cargo.toml" || die "relay build failed"
    cargo build --release --quiet --manifest-path "$LT/gen/Cargo.toml" || die "generator build failed"
}

# --- processes ------------------------------------------------------------------
declare -a STARTED_PIDS=()

# Stops every process this script started (TERM, then KILL after 3 s).
cleanup_processes() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 30); do
        local alive=0
        for pid in "${STARTED_PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${STARTED_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    STARTED_PIDS=()
}

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# forget_pid PID: no longer ours to stop (it has been stopped).
forget_pid() {
    local -a keep=()
    local p
    for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED_PIDS=("${keep[@]}")
}

# wait_udp IP PORT [SECONDS]: until something listens there.
wait_udp() {
    local ip=$1 port=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        if ss -Hunl "src $ip:$port" 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# udp_free IP PORT: nothing bound there.
udp_free() {
    ! ss -Hunl "src $1:$2" 2>/dev/null | grep -q .
}

# The process and its descendants (Kamailio forks its workers).
tree_pids() {
    local root=$1 child
    echo "$root"
    for child in $(ps -o pid= --ppid "$root" 2>/dev/null); do
        tree_pids "$child"
    done
}

# On-CPU nanoseconds (user + system) of a process tree, all threads, from
# /proc/PID/task/TID/schedstat (nanosecond resolution, unlike utime/stime).
tree_cpu_ns() {
    local total=0 pid f ns
    for pid in $(tree_pids "$1"); do
        for f in /proc/"$pid"/task/*/schedstat; do
            read -r ns _ <"$f" 2>/dev/null || continue
            total=$((total + ns))
        done
    done
    echo "$total"
}

# Times the threads of a process tree were put on a CPU (schedstat's third
# field): about one per wake-up, the kernel's scheduling cost a call pays.
tree_runs() {
    local total=0 pid f runs
    for pid in $(tree_pids "$1"); do
        for f in /proc/"$pid"/task/*/schedstat; do
            read -r _ _ runs <"$f" 2>/dev/null || continue
            total=$((total + runs))
        done
    done
    echo "$total"
}

# Proportional set size of a process tree in KiB (Kamailio's workers share
# their shared memory: summing RSS would count it once per process).
tree_pss_kb() {
    local total=0 pid kb
    for pid in $(tree_pids "$1"); do
        kb=$(awk '/^Pss:/ {print $2; exit}' /proc/"$pid"/smaps_rollup 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# --- scenarios and configs ------------------------------------------------------

# load_scenario NAME: sources loadtest/scenarios/NAME/scenario.conf into
# SCN_* variables (defaults below) and sets SCN_DIR.
load_scenario() {
    local name=$1
    SCN_DIR=$LT/scenarios/$name
    [[ -f $SCN_DIR/scenario.conf ]] || die "no scenario '$name' (see: $0 list)"
    DESCRIPTION="" PROXY_CFG=proxy.cfg UAC=builtin:uac UAS=builtin:uas UAS2=none
    GEN_MODE=calls GEN_ARGS="" SIPP_UAC_ARGS="" SIPP_REMOTE=proxy RELAY=yes
    # shellcheck disable=SC1091
    source "$SCN_DIR/scenario.conf"
    [[ -f $SCN_DIR/$PROXY_CFG ]] || die "scenario $name: no $PROXY_CFG"
}

# fill_config SRC DST: the scenario's proxy config with its placeholders filled.
fill_config() {
    sed -e "s|@LISTEN_IP@|$PROXY_IP|g; s|@LISTEN_PORT@|$PROXY_PORT|g" \
        -e "s|@UAS_IP@|$UAS_IP|g; s|@UAS_PORT@|$UAS_PORT|g" \
        -e "s|@UAS2_IP@|$UAS2_IP|g; s|@UAS2_PORT@|$UAS2_PORT|g" \
        -e "s|@CHILDREN@|$KAMAILIO_CHILDREN|g" \
        -e "s|@MPATH@|mpath=\"$KAMAILIO_MPATH\"|g" \
        -e "s|@SCN_DIR@|$SCN_DIR|g" \
        "$1" >"$2"
}

# ringsip_can_run CFG: 0 when `ringsip check` accepts the config; otherwise
# prints why (its file:line:col diagnostics) to stdout.
ringsip_can_run() {
    local out
    if out=$("$RINGSIP_BIN" check -f "$1" 2>&1); then
        return 0
    fi
    printf '%s\n' "$out"
    return 1
}
