#!/usr/bin/env bash
# ringsip against Kamailio 5.6 and a raw UDP relay, side by side, on this machine.
#
#   loadtest/compare.sh [compare] [options]   CPU per call, latency, memory (default)
#   loadtest/compare.sh maxrate [options]     highest calls/s with no failure
#   loadtest/compare.sh soak [options]        memory and latency drift over time
#   loadtest/compare.sh callgrind [options]   instructions per call under valgrind (stable on a noisy machine)
#   loadtest/compare.sh perf [options]        perf cpu-clock profile (kernel + user) of each proxy under load
#   loadtest/compare.sh ctl-latency [options] `ringsip ctl latency` against the generator's latency minus direct
#   loadtest/compare.sh list                  scenarios, and whether ringsip runs them yet
#
# Each proxy runs pinned to one core (taskset, --proxy-cpu), the load on the
# other (--load-cpu): sipp's uac/uas (or a scenario's sipp files) and/or
# ringsip-gen (loadtest/gen), at the same rate and call count for every proxy.
# The proxy's CPU time is read from /proc/PID/task/*/schedstat (all threads,
# all processes of its tree) before and after the load; memory is the PSS
# summed over its processes after the load. Proxies:
#
#   direct       no proxy: UAC to UAS (latency baseline, no CPU column)
#   direct-split the same, the generator's UAS thread on --proxy-cpu (ctl-latency's baseline)
#   relay-plain  raw relay, recvfrom/sendto loop           (loadtest/relay)
#   relay-uring  raw relay, tuned io_uring loop: the IO yardstick of DESIGN.md
#   ringsip      ringsip run --workers 1 --io uring
#   ringsip-poll ringsip run --workers 1 --io poll
#   ringsip-alt  the same as ringsip with the binary $RINGSIP_ALT_BIN (an A/B
#                of two builds, interleaved in every repetition)
#   kamailio     kamailio -DD -E with the same config file (children=1), default memory manager (qm)
#   kamailio-tlsf, kamailio-fm   the same with -x tlsf / -x fm (Kamailio's faster allocators)
#
# A scenario is a folder loadtest/scenarios/NAME with scenario.conf, one proxy
# config (the same file for ringsip and Kamailio) and sipp scenario files.
# When `ringsip check` refuses the config, ringsip's rows read "cannot run
# this config yet" and the rest still runs.
#
# Options (all modes):
#   --scenario NAME        (stateless)
#   --proxies "A B ..."    which rows (compare: direct relay-plain relay-uring ringsip kamailio kamailio-fm)
#   --load sipp|gen|both   load generator(s) (compare: both; maxrate, soak: gen)
#   --proxy-cpu N          core for the proxy (1)      --load-cpu N   core for the load (0)
#   --workers N            ringsip workers (1)         --kamailio-children N  (1)
#   --out DIR              where logs and results go (loadtest/out/MODE-DATE)
#   --no-build             use the binaries already built
# compare:   --rate R (500 calls/s)  --calls N (5000)  --reps K (3)
# maxrate:   --start R (500)  --max R (40000)  --step-seconds S (8)
# soak:      --rate R (500)  --duration S (600)  --interval S (10)
# callgrind: --rate R (100)  --calls N (2000); proxies relay-uring ringsip kamailio, sipp load
# perf:      --rate R (500)  --calls N (5000); proxies relay-uring ringsip kamailio, sipp load
# ctl-latency: --rate R (500)  --calls N (10000)  --reps K (3); scenario message-flood, gen load,
#            rows direct-split relay-uring ringsip (direct, ringsip-poll too: --proxies)
#
# Everything is bounded: each load by its call count and a timeout, each
# process killed on exit. One run at a time (a lock in /tmp): runs share cores.
set -euo pipefail

LT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LT/.." && pwd)

MODE=compare
case "${1:-}" in
compare | maxrate | soak | callgrind | perf | ctl-latency | list)
    MODE=$1
    shift
    ;;
esac

SCENARIO=""
PROXIES=""
LOAD=""
PROXY_CPU=1
LOAD_CPU=0
WORKERS=1
KAMAILIO_CHILDREN=1
# Kamailio shared memory (-m, MiB); environment KAMAILIO_SHM_MB overrides.
KAMAILIO_SHM_MB=${KAMAILIO_SHM_MB:-256}
OUT=""
BUILD=1
RATE=""
CALLS=""
REPS=3
START_RATE=500
MAX_RATE=40000
STEP_SECONDS=8
DURATION=600
INTERVAL=10

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

while (($#)); do
    opt=$1
    [[ $opt == -h || $opt == --help ]] && usage 0
    [[ $opt == --no-build ]] && {
        BUILD=0
        shift
        continue
    }
    (($# >= 2)) || { echo "compare.sh: $opt needs a value" >&2; usage 2; }
    val=$2
    shift 2
    case $opt in
    --scenario) SCENARIO=$val ;;
    --proxies) PROXIES=$val ;;
    --load) LOAD=$val ;;
    --proxy-cpu) PROXY_CPU=$val ;;
    --load-cpu) LOAD_CPU=$val ;;
    --workers) WORKERS=$val ;;
    --kamailio-children) KAMAILIO_CHILDREN=$val ;;
    --out) OUT=$val ;;
    --rate) RATE=$val ;;
    --calls) CALLS=$val ;;
    --reps) REPS=$val ;;
    --start) START_RATE=$val ;;
    --max) MAX_RATE=$val ;;
    --step-seconds) STEP_SECONDS=$val ;;
    --duration) DURATION=$val ;;
    --interval) INTERVAL=$val ;;
    *) echo "compare.sh: unknown option $opt" >&2; usage 2 ;;
    esac
done

# shellcheck source=lib.sh
source "$LT/lib.sh"

if [[ $MODE == callgrind ]]; then
    : "${RATE:=100}" "${CALLS:=2000}"
elif [[ $MODE == ctl-latency ]]; then
    : "${RATE:=500}" "${CALLS:=10000}" "${SCENARIO:=message-flood}"
else
    : "${RATE:=500}" "${CALLS:=5000}"
fi

for n in RATE CALLS REPS START_RATE MAX_RATE STEP_SECONDS DURATION INTERVAL WORKERS KAMAILIO_CHILDREN PROXY_CPU LOAD_CPU; do
    [[ ${!n} =~ ^[0-9]+$ && ${!n} -ge 0 ]] || die "--${n,,} must be a whole number (got '${!n}')"
done
((RATE > 0 && CALLS > 0 && REPS > 0 && INTERVAL > 0)) || die "rate, calls, reps and interval must be positive"

: "${SCENARIO:=stateless}"
case $MODE in
compare) : "${PROXIES:=direct relay-plain relay-uring ringsip kamailio kamailio-fm}" "${LOAD:=both}" ;;
maxrate) : "${PROXIES:=relay-uring ringsip kamailio kamailio-fm}" "${LOAD:=gen}" ;;
soak) : "${PROXIES:=ringsip kamailio-fm}" "${LOAD:=gen}" ;;
callgrind) : "${PROXIES:=relay-uring ringsip kamailio}" "${LOAD:=sipp}" ;;
perf) : "${PROXIES:=relay-uring ringsip kamailio}" "${LOAD:=sipp}" ;;
ctl-latency) : "${PROXIES:=direct-split relay-uring ringsip}" "${LOAD:=gen}" ;;
list) ;;
esac
case ${LOAD:-gen} in sipp | gen | both) ;; *) die "--load must be sipp, gen or both" ;; esac

# --- list -----------------------------------------------------------------------
if [[ $MODE == list ]]; then
    [[ -x $RINGSIP_BIN ]] || (cd "$ROOT" && cargo build --release --quiet)
    KAMAILIO_CHILDREN=1
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    for conf in "$LT"/scenarios/*/scenario.conf; do
        name=$(basename "$(dirname "$conf")")
        load_scenario "$name"
        fill_config "$SCN_DIR/$PROXY_CFG" "$tmp/$name.cfg"
        if why=$(ringsip_can_run "$tmp/$name.cfg"); then
            state="ringsip runs it"
        else
            state="ringsip cannot run this config yet ($(grep -c . <<<"$why") diagnostics)"
        fi
        printf '%-14s %s\n               %s\n' "$name" "$DESCRIPTION" "$state"
    done
    exit 0
fi

# --- set-up ---------------------------------------------------------------------
(($(nproc) >= 2)) || log "warning: $(nproc) core(s): the proxy and the load share a core"
exec 9>/tmp/ringsip-loadtest.lock
if [[ -n ${LOADTEST_WAIT:-} ]]; then
    flock 9 # LOADTEST_WAIT=1: queue behind the running one instead of failing
else
    flock -n 9 || die "another compare.sh is running (lock /tmp/ringsip-loadtest.lock; LOADTEST_WAIT=1 waits)"
fi

install_tools
((BUILD)) && build_tools
for bin in "$RINGSIP_BIN" "$RELAY_BIN" "$GEN_BIN"; do
    [[ -x $bin ]] || die "$bin is missing (run without --no-build)"
done
load_scenario "$SCENARIO"

: "${OUT:=$LT/out/$MODE-$SCENARIO-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.tsv
trap 'cleanup_processes' EXIT
trap 'exit 130' INT TERM

for addr in "$PROXY_IP:$PROXY_PORT" "$UAS_IP:$UAS_PORT" "$UAS2_IP:$UAS2_PORT" "$UAC_IP:$UAC_PORT"; do
    udp_free "${addr%:*}" "${addr#*:}" || die "$addr is already in use (a compare.sh left over?)"
done

CFG=$OUT/proxy.cfg
fill_config "$SCN_DIR/$PROXY_CFG" "$CFG"
"$KAMAILIO" -c -f "$CFG" >"$OUT/kamailio-check.log" 2>&1 ||
    die "Kamailio refuses $CFG (the scenario's config is wrong): see $OUT/kamailio-check.log"
RINGSIP_OK=1
if ! why=$(ringsip_can_run "$CFG"); then
    RINGSIP_OK=0
    printf '%s\n' "$why" >"$OUT/ringsip-check.log"
    log "ringsip cannot run this config yet; \`ringsip check\` says:"
    sed 's/^/    /' "$OUT/ringsip-check.log" >&2
fi

{
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')"
    echo "# machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "# kamailio: $("$KAMAILIO" -v 2>/dev/null | head -n1)"
    echo "# sipp: $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -n1)"
    echo "# command: $0 $MODE --scenario $SCENARIO --proxies '$PROXIES' --load $LOAD --rate $RATE --calls $CALLS --reps $REPS --proxy-cpu $PROXY_CPU --load-cpu $LOAD_CPU --workers $WORKERS --kamailio-children $KAMAILIO_CHILDREN"
} >"$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

# --- proxies --------------------------------------------------------------------
PROXY_PID=""
# A command the proxy runs under (callgrind mode: valgrind), and how long it
# may take to bind its port.
declare -a PROXY_WRAP=()
PROXY_START_SECS=10
# Arguments added to `ringsip run` (ctl-latency mode: --ctl).
declare -a RINGSIP_EXTRA=()

# start_proxy NAME LOGFILE BOUND: starts it pinned to PROXY_CPU and waits for its port.
start_proxy() {
    local name=$1 logf=$2 bound=$3
    PROXY_PID=""
    local -a cmd
    case $name in
    direct | direct-split) return 0 ;;
    relay-plain | relay-uring)
        cmd=("$RELAY_BIN" --listen "$PROXY_IP:$PROXY_PORT" --to "$UAS_IP:$UAS_PORT"
            --io "${name#relay-}" --max-seconds "$bound")
        ;;
    ringsip | ringsip-poll | ringsip-alt)
        local io=uring bin=$RINGSIP_BIN
        [[ $name == ringsip-poll ]] && io=poll
        if [[ $name == ringsip-alt ]]; then
            bin=${RINGSIP_ALT_BIN:-}
            [[ -x $bin ]] || die "ringsip-alt: set RINGSIP_ALT_BIN to a ringsip binary"
        fi
        # --no-pin: taskset chooses the core (ringsip would pin worker 0 to core 0).
        cmd=("$bin" run -f "$CFG" --workers "$WORKERS" --io "$io" --no-pin "${RINGSIP_EXTRA[@]}")
        ;;
    kamailio)
        # -m: shared memory in MiB. The default 64 MiB runs out under the
        # stateful scenario at 500 calls/s ("could not allocate shared memory"
        # and lost calls), which would inflate Kamailio's CPU per call.
        cmd=("$KAMAILIO" -f "$CFG" -DD -E -m "$KAMAILIO_SHM_MB")
        ;;
    kamailio-tlsf | kamailio-fm)
        # Kamailio's other memory managers (-x: shared and private memory);
        # the default, qm, is the debugging-friendly one.
        cmd=("$KAMAILIO" -f "$CFG" -DD -E -m "$KAMAILIO_SHM_MB" -x "${name#kamailio-}")
        ;;
    *) die "unknown proxy '$name' (direct relay-plain relay-uring ringsip ringsip-poll ringsip-alt kamailio kamailio-tlsf kamailio-fm)" ;;
    esac
    # timeout: TERM at the bound, KILL 5 s later; it forwards our TERM too.
    taskset -c "$PROXY_CPU" timeout -k 5 "$bound" "${PROXY_WRAP[@]}" "${cmd[@]}" >"$logf" 2>&1 &
    PROXY_PID=$!
    STARTED_PIDS+=("$PROXY_PID")
    if ! wait_udp "$PROXY_IP" "$PROXY_PORT" "$PROXY_START_SECS"; then
        tail -n 20 "$logf" >&2
        die "$name did not bind $PROXY_IP:$PROXY_PORT within $PROXY_START_SECS s (log: $logf)"
    fi
    # The timeout wrapper forks the proxy: measure the proxy's own tree.
    PROXY_PID_MEASURE=$(ps -o pid= --ppid "$PROXY_PID" | head -n1 | tr -d ' ')
    [[ -n $PROXY_PID_MEASURE ]] || die "$name: no process under its timeout wrapper (log: $logf)"
    sleep 0.3
}

stop_proxy() {
    [[ -n $PROXY_PID ]] || return 0
    stop_pid "$PROXY_PID"
    forget_pid "$PROXY_PID"
    PROXY_PID=""
    # Kamailio's workers leave with their parent; wait for the port to be free.
    for _ in $(seq 50); do udp_free "$PROXY_IP" "$PROXY_PORT" && break; sleep 0.1; done
}

# --- loads ----------------------------------------------------------------------
LOAD_HOOK_BEFORE=""
LOAD_HOOK_AFTER=""

# callgrind_control ARGS for every process of the proxy (vgdb under the hood).
callgrind_each() {
    local pid
    for pid in $(tree_pids "$PROXY_PID_MEASURE"); do
        timeout 60 callgrind_control "$@" "$pid" >>"$OUT/callgrind_control.log" 2>&1 ||
            log "callgrind_control $* $pid failed (see $OUT/callgrind_control.log)"
    done
}
callgrind_on() {
    callgrind_each -i on
    sleep 1
}
# Instrumentation off, then a dump: a proxy stopping under valgrind may be
# killed before it writes its profile at exit.
callgrind_off() {
    callgrind_each -i off
    callgrind_dump
}
# A dump where vgdb reaches (Kamailio's forked workers write theirs at exit).
callgrind_dump() { callgrind_each -d; }

# perf mode: sample the proxy's processes (all threads, kernel and user
# stacks) while the load runs.
PERF_PID=""
PERF_FILE=""
perf_on() {
    local pids
    pids=$(tree_pids "$PROXY_PID_MEASURE" | paste -sd, -)
    perf record -q -e cpu-clock -F 2000 -g -p "$pids" -o "$PERF_FILE" >/dev/null 2>&1 &
    PERF_PID=$!
    STARTED_PIDS+=("$PERF_PID")
    sleep 0.5
}
perf_off() {
    [[ -n $PERF_PID ]] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    forget_pid "$PERF_PID"
    PERF_PID=""
}
# Control ports of the sipps (the default 8888 is shared by every sipp on the
# machine): one per role, set here because the helpers run in subshells.
SIPP_CP_BASE=$((27000 + RANDOM % 2000 * 4))
declare -A SIPP_CP=([uac]=$((SIPP_CP_BASE)) [uas]=$((SIPP_CP_BASE + 1)) [uas2]=$((SIPP_CP_BASE + 2)))

# sipp_common TAG SCENARIO IP PORT DIR: common arguments for one sipp.
sipp_common() {
    local tag=$1 scn=$2 ip=$3 port=$4 dir=$5
    if [[ $scn == builtin:* ]]; then
        printf '%s\n' -sn "${scn#builtin:}"
    else
        printf '%s\n' -sf "$SCN_DIR/$scn"
    fi
    # -buff_size: sipp's socket buffers (default 64 KiB) overflow when it is
    # descheduled for a moment on a shared machine.
    printf '%s\n' -i "$ip" -p "$port" -nostdin -cp "${SIPP_CP[$tag]}" -buff_size 4194304 \
        -trace_stat -stf "$dir/${tag}_stat.csv" -fd 1 \
        -trace_err -error_file "$dir/${tag}_errors.log" \
        -trace_screen -screen_file "$dir/${tag}_screen.log"
}

# start_sipp_uas TAG SCENARIO IP PORT DIR BOUND: a sipp UAS in the background.
start_sipp_uas() {
    local tag=$1 scn=$2 ip=$3 port=$4 dir=$5 bound=$6
    local -a args
    mapfile -t args < <(sipp_common "$tag" "$scn" "$ip" "$port" "$dir")
    taskset -c "$LOAD_CPU" timeout -s KILL "$bound" sipp "${args[@]}" \
        >"$dir/${tag}_stdout.log" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    wait_udp "$ip" "$port" 10 || die "sipp UAS $tag did not bind $ip:$port (see $dir/${tag}_stdout.log)"
    echo "$pid"
}

# last_stat FILE COLUMN: a column of the last line of a sipp statistics file.
last_stat() {
    awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i } END { print (c ? $c : "") }' "$1" 2>/dev/null
}

# run_load PROXY LOADKIND REP DIR: one measured run; appends to RESULTS.
# Columns: scenario proxy load rep rate calls ok failed cpu_ns pss_kb p50 p99 p999 max gen_cpu_s runs
run_load() {
    local proxy=$1 kind=$2 rep=$3 dir=$4 rate=$5 calls=$6
    local bound=$((calls / rate + 60))
    mkdir -p "$dir"
    start_proxy "$proxy" "$dir/proxy.log" "$((bound + 30))"
    local target_ip=$PROXY_IP target_port=$PROXY_PORT
    if [[ $proxy == direct* ]]; then target_ip=$UAS_IP target_port=$UAS_PORT; fi
    local -a uas_pids=()
    local ok=0 failed=0 p50="" p99="" p999="" max="" gen_cpu=""
    local cpu0=0 cpu1=0 pss=0 runs0=0 runs1=0
    if [[ $kind == sipp ]]; then
        [[ $UAS == none ]] || uas_pids+=("$(start_sipp_uas uas "$UAS" "$UAS_IP" "$UAS_PORT" "$dir" "$bound")")
        [[ $UAS2 == none ]] || uas_pids+=("$(start_sipp_uas uas2 "$UAS2" "$UAS2_IP" "$UAS2_PORT" "$dir" "$bound")")
        # Started in a subshell: register them here for the exit trap.
        STARTED_PIDS+=("${uas_pids[@]}")
        local -a args remote
        mapfile -t args < <(sipp_common uac "$UAC" "$UAC_IP" "$UAC_PORT" "$dir")
        if [[ $SIPP_REMOTE == uas ]]; then
            remote=("$UAS_IP:$UAS_PORT")
            [[ $proxy == direct* ]] || remote+=(-rsa "$target_ip:$target_port")
        else
            remote=("$target_ip:$target_port")
        fi
        local -a extra=()
        # shellcheck disable=SC2206  # word splitting of scenario-given arguments is intended
        [[ -n $SIPP_UAC_ARGS ]] && extra=(${SIPP_UAC_ARGS//@PROXY@/$target_ip:$target_port})
        [[ -n $PROXY_PID ]] && cpu0=$(tree_cpu_ns "$PROXY_PID_MEASURE") runs0=$(tree_runs "$PROXY_PID_MEASURE")
        [[ -z $LOAD_HOOK_BEFORE ]] || "$LOAD_HOOK_BEFORE"
        taskset -c "$LOAD_CPU" timeout -s KILL "$((bound + 15))" sipp "${remote[@]}" "${args[@]}" \
            -m "$calls" -r "$rate" -timeout "${bound}s" -timeout_error "${extra[@]}" \
            >"$dir/uac_stdout.log" 2>&1 || true
        [[ -z $LOAD_HOOK_AFTER ]] || "$LOAD_HOOK_AFTER"
        [[ -n $PROXY_PID ]] && cpu1=$(tree_cpu_ns "$PROXY_PID_MEASURE") runs1=$(tree_runs "$PROXY_PID_MEASURE")
        ok=$(last_stat "$dir/uac_stat.csv" "SuccessfulCall(C)")
        failed=$(last_stat "$dir/uac_stat.csv" "FailedCall(C)")
        ok=${ok:-0} failed=${failed:-$calls}
        # Calls never finished (sipp killed at its bound) count as failed.
        ((ok + failed >= calls)) || failed=$((calls - ok))
    else
        local -a gen_extra=()
        # shellcheck disable=SC2206
        [[ -n $GEN_ARGS ]] && gen_extra=(${GEN_ARGS//@PROXY@/$PROXY_IP:$PROXY_PORT})
        local -a uas_arg=(--uas "$UAS_IP:$UAS_PORT")
        [[ " ${gen_extra[*]} " == *" --no-uas "* ]] && uas_arg=()
        [[ -n $PROXY_PID ]] && cpu0=$(tree_cpu_ns "$PROXY_PID_MEASURE") runs0=$(tree_runs "$PROXY_PID_MEASURE")
        [[ -z $LOAD_HOOK_BEFORE ]] || "$LOAD_HOOK_BEFORE"
        taskset -c "$LOAD_CPU" timeout -s KILL "$((bound + 15))" "$GEN_BIN" \
            --proxy "$target_ip:$target_port" --uac "$UAC_IP:0" "${uas_arg[@]}" \
            --mode "$GEN_MODE" --rate "$rate" --count "$calls" --max-seconds "$bound" \
            "${gen_extra[@]}" >"$dir/gen.log" 2>&1 || true
        [[ -z $LOAD_HOOK_AFTER ]] || "$LOAD_HOOK_AFTER"
        [[ -n $PROXY_PID ]] && cpu1=$(tree_cpu_ns "$PROXY_PID_MEASURE") runs1=$(tree_runs "$PROXY_PID_MEASURE")
        local line
        line=$(grep '^RESULT ' "$dir/gen.log" | tail -n1 || true)
        field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
        ok=$(field completed) failed=$(field failed)
        ok=${ok:-0} failed=${failed:-$calls}
        p50=$(field setup_p50_us) p99=$(field setup_p99_us) p999=$(field setup_p999_us)
        max=$(field setup_max_us) gen_cpu=$(field gen_cpu_s)
    fi
    [[ -n $PROXY_PID ]] && pss=$(tree_pss_kb "$PROXY_PID_MEASURE")
    local pid
    for pid in "${uas_pids[@]}"; do
        stop_pid "$pid"
        forget_pid "$pid"
    done
    stop_proxy
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$SCENARIO" "$proxy" "$kind" "$rep" "$rate" "$calls" "$ok" "$failed" \
        "$((cpu1 - cpu0))" "$pss" "${p50:--}" "${p99:--}" "${p999:--}" "${max:--}" "${gen_cpu:--}" \
        "$((runs1 - runs0))" >>"$RESULTS"
    local per=- wakes=-
    ((ok > 0 && cpu1 > cpu0)) && per=$(((cpu1 - cpu0) / ok / 1000))
    ((ok > 0 && runs1 > runs0)) && wakes=$(awk -v r=$((runs1 - runs0)) -v n="$ok" 'BEGIN { printf "%.1f", r / n }')
    log "$proxy/$kind rep $rep: $ok ok, $failed failed, CPU ${per} us/call, ${wakes} runs/call, PSS $((pss / 1024)) MiB${p50:+, p50 ${p50} us p99 ${p99} us}"
}

# The proxies this scenario can have (the relay only forwards UAC<->UAS).
runnable() {
    local p=$1
    case $p in
    relay-*) [[ $RELAY == yes ]] ;;
    direct | direct-split) [[ $UAS != none && $RELAY == yes ]] ;;
    ringsip*) ((RINGSIP_OK)) ;;
    *) true ;;
    esac
}

loads() {
    case $LOAD in
    both) [[ $GEN_MODE == none ]] && echo sipp || echo sipp gen ;;
    gen) [[ $GEN_MODE == none ]] && die "scenario $SCENARIO has no ringsip-gen mode: use --load sipp" || echo gen ;;
    sipp) echo sipp ;;
    esac
}

printf 'scenario\tproxy\tload\trep\trate\tcalls\tok\tfailed\tcpu_ns\tpss_kb\tp50_us\tp99_us\tp999_us\tmax_us\tgen_cpu_s\truns\n' >"$RESULTS"

# --- compare --------------------------------------------------------------------
if [[ $MODE == compare ]]; then
    log "compare: scenario $SCENARIO, $CALLS calls at $RATE/s, $REPS repetitions, loads: $(loads)"
    for rep in $(seq "$REPS"); do
        # Interleave proxies within a repetition: drift of a noisy machine
        # then spreads over all of them instead of landing on one.
        for proxy in $PROXIES; do
            if ! runnable "$proxy"; then
                continue
            fi
            for kind in $(loads); do
                run_load "$proxy" "$kind" "$rep" "$OUT/$proxy-$kind-$rep" "$RATE" "$CALLS"
            done
        done
    done
    skipped=""
    for proxy in $PROXIES; do
        runnable "$proxy" || skipped+="$proxy "
    done
    python3 "$LT/summarize.py" compare "$RESULTS" "$OUT/meta.txt" \
        --ringsip-ok "$RINGSIP_OK" --skipped "$skipped" | tee "$OUT/table.md"
    log "logs and raw numbers: $OUT"
    exit 0
fi

# --- maxrate --------------------------------------------------------------------
# A step passes when every call of it completes. Rates double from --start
# until one fails (or --max), then three bisections between the last pass and
# the first failure.
step_passes() {
    local proxy=$1 rate=$2 tag=$3
    local calls=$((rate * STEP_SECONDS))
    run_load "$proxy" "$(loads)" "$tag" "$OUT/$proxy-$rate" "$rate" "$calls"
    local failed ok
    failed=$(tail -n1 "$RESULTS" | cut -f8)
    ok=$(tail -n1 "$RESULTS" | cut -f7)
    ((failed == 0 && ok == calls))
}

if [[ $MODE == maxrate ]]; then
    [[ $LOAD != both ]] || LOAD=gen
    log "maxrate: scenario $SCENARIO, steps of ${STEP_SECONDS}s from $START_RATE/s up to $MAX_RATE/s, load $(loads)"
    for proxy in $PROXIES; do
        runnable "$proxy" || { log "$proxy: skipped (cannot run this scenario)"; continue; }
        [[ $proxy != direct ]] || continue
        good=0 bad=0 rate=$START_RATE
        while ((rate <= MAX_RATE)); do
            if step_passes "$proxy" "$rate" "step"; then
                good=$rate
                rate=$((rate * 2))
            else
                bad=$rate
                break
            fi
        done
        if ((bad > 0 && good > 0)); then
            for _ in 1 2 3; do
                mid=$(((good + bad) / 2 / 50 * 50))
                ((mid > good && mid < bad)) || break
                if step_passes "$proxy" "$mid" "bisect"; then good=$mid; else bad=$mid; fi
            done
        fi
        log "$proxy: max ${good} calls/s with no failure (first failing rate: ${bad:-none})"
    done
    python3 "$LT/summarize.py" maxrate "$RESULTS" "$OUT/meta.txt" | tee "$OUT/table.md"
    log "logs and raw numbers: $OUT"
    exit 0
fi

# --- soak -----------------------------------------------------------------------
if [[ $MODE == soak ]]; then
    [[ $LOAD == gen || $LOAD == both ]] || die "soak uses ringsip-gen (--load gen)"
    [[ $GEN_MODE != none ]] || die "scenario $SCENARIO has no ringsip-gen mode"
    calls=$((RATE * DURATION))
    log "soak: scenario $SCENARIO, $RATE/s for ${DURATION}s, a sample every ${INTERVAL}s"
    for proxy in $PROXIES; do
        runnable "$proxy" || { log "$proxy: skipped (cannot run this scenario)"; continue; }
        [[ $proxy != direct ]] || continue
        dir=$OUT/$proxy
        mkdir -p "$dir"
        start_proxy "$proxy" "$dir/proxy.log" "$((DURATION + 120))"
        # shellcheck disable=SC2206
        gen_extra=(${GEN_ARGS//@PROXY@/$PROXY_IP:$PROXY_PORT})
        uas_arg=(--uas "$UAS_IP:$UAS_PORT")
        [[ " ${gen_extra[*]} " == *" --no-uas "* ]] && uas_arg=()
        taskset -c "$LOAD_CPU" timeout -s KILL "$((DURATION + 60))" "$GEN_BIN" \
            --proxy "$PROXY_IP:$PROXY_PORT" --uac "$UAC_IP:0" "${uas_arg[@]}" \
            --mode "$GEN_MODE" --rate "$RATE" --count "$calls" --max-seconds "$((DURATION + 30))" \
            --interval "$INTERVAL" "${gen_extra[@]}" >"$dir/gen.log" 2>&1 &
        gen_pid=$!
        STARTED_PIDS+=("$gen_pid")
        t0=$(date +%s.%N)
        printf 't_s\tpss_kb\tcpu_ns\n' >"$dir/memory.tsv"
        while kill -0 "$gen_pid" 2>/dev/null; do
            printf '%s\t%s\t%s\n' "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.1f", a-b}')" \
                "$(tree_pss_kb "$PROXY_PID_MEASURE")" "$(tree_cpu_ns "$PROXY_PID_MEASURE")" >>"$dir/memory.tsv"
            sleep "$INTERVAL"
        done
        wait "$gen_pid" || true
        forget_pid "$gen_pid"
        # A last sample: the loop above may have slept through the end.
        printf '%s\t%s\t%s\n' "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.1f", a-b}')" \
            "$(tree_pss_kb "$PROXY_PID_MEASURE")" "$(tree_cpu_ns "$PROXY_PID_MEASURE")" >>"$dir/memory.tsv"
        stop_proxy
        python3 "$LT/summarize.py" soak "$dir/gen.log" "$dir/memory.tsv" --proxy "$proxy" | tee -a "$OUT/table.md"
    done
    log "logs and raw numbers: $OUT"
    exit 0
fi

# --- callgrind ------------------------------------------------------------------
# Two measures, user-space instructions only (the kernel's share, the same for
# every proxy, is what the CPU columns add):
#   handler  collection only inside the function that handles one received
#            message (ringsip: Engine::on_inbound; Kamailio: receive_msg, in
#            every worker process): parse, script, build/send the output.
#   process  the whole process (ringsip, relay) from just before the load to
#            just after it, switched with callgrind_control (vgdb). Kamailio's
#            forked workers are out of vgdb's reach, so it has no such row.
if [[ $MODE == callgrind ]]; then
    if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
        die "callgrind mode needs valgrind (apt-get install valgrind)"
    fi
    [[ $LOAD == both ]] && LOAD=sipp
    PROXY_START_SECS=120
    log "callgrind: scenario $SCENARIO, $CALLS calls at $RATE/s, load $(loads)"
    printf 'proxy\tmeasure\tcalls_ok\tfailed\tinstructions\tinstr_per_call\n' >"$OUT/callgrind.tsv"
    handler_symbol() {
        case $1 in
        ringsip*) echo 'ringsip::modules::core::engine::Engine::on_inbound' ;;
        kamailio*) echo 'receive_msg' ;;
        esac
    }
    for proxy in $PROXIES; do
        runnable "$proxy" || { log "$proxy: skipped (cannot run this scenario)"; continue; }
        [[ $proxy != direct ]] || continue
        measures=""
        [[ -n $(handler_symbol "$proxy") ]] && measures+="handler "
        [[ $proxy != kamailio* ]] && measures+="process"
        for measure in $measures; do
            dir=$OUT/$proxy-callgrind-$measure
            mkdir -p "$dir"
            # Profiles of an earlier run in the same --out would be summed in.
            rm -f "$dir"/callgrind.out.*
            PROXY_WRAP=(valgrind --tool=callgrind "--callgrind-out-file=$dir/callgrind.out.%p")
            if [[ $measure == handler ]]; then
                PROXY_WRAP+=(--collect-atstart=no "--toggle-collect=$(handler_symbol "$proxy")")
                LOAD_HOOK_BEFORE="" LOAD_HOOK_AFTER="callgrind_dump"
            else
                PROXY_WRAP+=(--instr-atstart=no)
                LOAD_HOOK_BEFORE="callgrind_on" LOAD_HOOK_AFTER="callgrind_off"
            fi
            run_load "$proxy" "$(loads)" 1 "$dir" "$RATE" "$CALLS"
            LOAD_HOOK_BEFORE="" LOAD_HOOK_AFTER=""
            PROXY_WRAP=()
            ok=$(tail -n1 "$RESULTS" | cut -f7)
            failed=$(tail -n1 "$RESULTS" | cut -f8)
            total=0
            for f in "$dir"/callgrind.out.*; do
                [[ -s $f ]] || continue
                n=$(awk '/^totals:/ {print $2; exit}' "$f")
                total=$((total + ${n:-0}))
            done
            per=$((ok > 0 ? total / ok : 0))
            if [[ $measure == handler && $total == 0 ]]; then
                # The toggle symbol never ran: the build inlined it (a
                # profile-guided build may) or renamed it. 0 would read as free.
                per="n/a"
                log "$proxy: $(handler_symbol "$proxy") never ran under callgrind (inlined in this build?)"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$proxy" "$measure" "$ok" "$failed" "$total" "$per" >>"$OUT/callgrind.tsv"
            log "$proxy ($measure): $total instructions for $ok calls: $per per call"
            # The largest profile: callgrind_annotate views of it.
            # shellcheck disable=SC2012  # names are ours, no odd characters
            biggest=$(ls -S "$dir"/callgrind.out.* | head -n1)
            callgrind_annotate --inclusive=no "$biggest" 2>/dev/null | head -n 80 >"$dir/annotate-self.txt" || true
            callgrind_annotate --inclusive=yes "$biggest" 2>/dev/null | head -n 80 >"$dir/annotate-inclusive.txt" || true
        done
    done
    {
        echo "| proxy | measure | calls (failed) | instructions per call (user space) |"
        echo "|---|---|---|---|"
        tail -n +2 "$OUT/callgrind.tsv" | while IFS=$'\t' read -r p m ok failed _ per; do
            echo "| $p | $m | $ok ($failed) | $per |"
        done
    } | tee "$OUT/table.md"
    log "profiles (callgrind_annotate, kcachegrind): $OUT/*-callgrind-*/"
    exit 0
fi

# --- ctl-latency ----------------------------------------------------------------
# Issue #6's must-show: what `ringsip ctl latency` reports against a loaded
# server, next to what the generator measured through the proxy minus what it
# measured with no proxy (UAC straight to UAS: the network time). Per
# repetition: a direct run, then a ringsip run (1 worker pinned to
# --proxy-cpu, the generator on --load-cpu) with the histograms reset just
# before the load and read (`ringsip ctl --json latency`) right after it.
# A MESSAGE round trip crosses the proxy twice (request, then the 200), so
# the generator's added time is compared with ctl's MESSAGE row plus its 2xx
# row: means add exactly; percentiles do not, the p50/p90/p99 sums are an
# approximation (exact only if the two legs were perfectly correlated).
if [[ $MODE == ctl-latency ]]; then
    [[ $LOAD == gen || $LOAD == both ]] || die "ctl-latency uses ringsip-gen (--load gen)"
    [[ $GEN_MODE != none ]] || die "scenario $SCENARIO has no ringsip-gen mode"
    ((RINGSIP_OK)) || die "ringsip cannot run scenario $SCENARIO"
    LOAD=gen
    CTL_SOCK=$OUT/ctl.sock
    RINGSIP_EXTRA=(--ctl "unix:$CTL_SOCK")
    CTL_JSON=""
    ctl_call() { timeout 10 "$RINGSIP_BIN" ctl -s "unix:$CTL_SOCK" "$@"; }
    ctl_reset() { ctl_call latency.reset >/dev/null || die "ringsip ctl latency.reset failed"; }
    ctl_read() { ctl_call --json latency >"$CTL_JSON" || die "ringsip ctl --json latency failed"; }
    # direct-split: the generator's UAS thread (named "uas") moved to the
    # proxy's core as soon as it exists, so that a direct round trip wakes a
    # thread on the other core at each end, as one through the proxy does.
    SPLIT_PID=""
    split_uas_start() {
        local gen_exe
        gen_exe=$(readlink -f "$GEN_BIN")
        (
            for _ in $(seq 200); do
                for comm in /proc/[0-9]*/task/[0-9]*/comm; do
                    [[ $(cat "$comm" 2>/dev/null) == uas ]] || continue
                    local pid=${comm#/proc/} tid=${comm%/comm}
                    pid=${pid%%/*} tid=${tid##*/}
                    [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$gen_exe" ]] || continue
                    taskset -p -c "$PROXY_CPU" "$tid" >/dev/null && echo "uas thread $tid on core $PROXY_CPU" >"$SPLIT_LOG"
                    exit 0
                done
                sleep 0.01
            done
            echo "uas thread not found" >"$SPLIT_LOG"
        ) &
        SPLIT_PID=$!
        STARTED_PIDS+=("$SPLIT_PID")
    }
    split_uas_end() {
        wait "$SPLIT_PID" 2>/dev/null || true
        forget_pid "$SPLIT_PID"
    }
    log "ctl-latency: scenario $SCENARIO, $CALLS requests at $RATE/s, $REPS repetitions, rows: $PROXIES"
    for rep in $(seq "$REPS"); do
        for proxy in $PROXIES; do
            runnable "$proxy" || { log "$proxy: skipped (cannot run this scenario)"; continue; }
            dir=$OUT/$proxy-gen-$rep
            if [[ $proxy == ringsip* ]]; then
                CTL_JSON=$dir/ctl-latency.json
                LOAD_HOOK_BEFORE=ctl_reset LOAD_HOOK_AFTER=ctl_read
            elif [[ $proxy == direct-split ]]; then
                mkdir -p "$dir"
                SPLIT_LOG=$dir/split.log
                LOAD_HOOK_BEFORE=split_uas_start LOAD_HOOK_AFTER=split_uas_end
            fi
            run_load "$proxy" gen "$rep" "$dir" "$RATE" "$CALLS"
            LOAD_HOOK_BEFORE="" LOAD_HOOK_AFTER=""
        done
    done
    python3 - "$OUT" "$REPS" "$PROXIES" <<'PY' | tee "$OUT/table.md"
import json, re, statistics, sys
out, reps, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
QS = ("p50", "p90", "p99", "mean")
relay = next((p for p in rows if p.startswith("relay")), None)
# The network time: direct-split when it ran (the same cross-core wake-ups
# as through the proxy), else direct.
base = "direct-split" if "direct-split" in rows else "direct"

def gen(proxy, rep):
    try:
        line = [l for l in open(f"{out}/{proxy}-gen-{rep}/gen.log") if l.startswith("RESULT ")][-1]
        f = dict(re.findall(r"(\S+)=(\S+)", line))
        return {q: float(f[f"setup_{q}_us"]) for q in QS}, f"{f['completed']} ok, {f['failed']} failed"
    except (OSError, IndexError, KeyError, ValueError):
        return None, "no result"

def ctl(proxy, rep):
    try:
        by = {r["name"]: r for r in json.load(open(f"{out}/{proxy}-gen-{rep}/ctl-latency.json"))["by_message"]}
    except (OSError, KeyError, ValueError):
        return None
    pick = lambda name: ({q: (by.get(name, {}).get(f"{q}_ns") or 0) / 1000 for q in QS}, by.get(name, {}).get("count", 0))
    return pick("MESSAGE"), pick("2xx")

ratios = {}
for proxy in [p for p in rows if p.startswith("ringsip")]:
    print(f"### {proxy}: ctl latency vs the generator (µs; added = via {proxy} − {base})\n")
    head = f"| rep | row | gen via {proxy} | gen {base} | added | ctl MESSAGE | ctl 2xx | ctl sum | ctl sum / added |"
    if relay:
        head += f" gen via {relay} | {proxy} − {relay} |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for rep in range(1, reps + 1):
        via, status = gen(proxy, rep)
        direct, _ = gen(base, rep)
        legs = ctl(proxy, rep)
        yard = gen(relay, rep)[0] if relay else None
        if not (via and direct and legs):
            print(f"| {rep} | missing ({status}; see {out}/{proxy}-gen-{rep}) |")
            continue
        (req, nreq), (rsp, nrsp) = legs
        for q in QS:
            added = via[q] - direct[q]
            total = req[q] + rsp[q]
            ratio = total / added if added > 0 else float("nan")
            ratios.setdefault((proxy, q), []).append(ratio)
            line = f"| {rep} | {q} | {via[q]:.1f} | {direct[q]:.1f} | {added:.1f} | {req[q]:.1f} | {rsp[q]:.1f} | {total:.1f} | {ratio:.2f} |"
            if relay:
                line += f" {yard[q]:.1f} | {via[q] - yard[q]:.1f} |" if yard else " - | - |"
            print(line)
        print(f"| {rep} | counts | {status} | | | {nreq} | {nrsp} | | |" + (" | |" if relay else ""))
    print()
print("### median over the repetitions of ctl sum / added (1.00 = agreement; issue #6 asks 0.80–1.20)\n")
print("| proxy | p50 | p90 | p99 | mean |")
print("|---|---|---|---|---|")
for proxy in [p for p in rows if p.startswith("ringsip")]:
    cells = []
    for q in QS:
        r = [x for x in ratios.get((proxy, q), []) if x == x]
        cells.append(f"{statistics.median(r):.2f} ({min(r):.2f}–{max(r):.2f})" if r else "-")
    print(f"| {proxy} | " + " | ".join(cells) + " |")
if relay:
    print(f"\nctl cannot see the proxy's sends nor the wake-up of the process it sends to; {relay} "
          f"(receive and send only) pays those too, so ctl sum should lie between "
          f"'{rows[-1]} − {relay}' (all of the relay's time is network) and 'added' (none is).")
PY
    log "logs, generator output and ctl JSON: $OUT"
    exit 0
fi

# --- perf -----------------------------------------------------------------------
if [[ $MODE == perf ]]; then
    command -v perf >/dev/null || die "perf mode needs perf (apt-get install linux-perf)"
    [[ $LOAD == both ]] && LOAD=sipp
    log "perf: scenario $SCENARIO, $CALLS calls at $RATE/s, load $(loads)"
    for proxy in $PROXIES; do
        runnable "$proxy" || { log "$proxy: skipped (cannot run this scenario)"; continue; }
        [[ $proxy != direct ]] || continue
        dir=$OUT/$proxy-perf
        mkdir -p "$dir"
        PERF_FILE=$dir/perf.data
        LOAD_HOOK_BEFORE="perf_on" LOAD_HOOK_AFTER="perf_off"
        run_load "$proxy" "$(loads)" 1 "$dir" "$RATE" "$CALLS"
        LOAD_HOOK_BEFORE="" LOAD_HOOK_AFTER=""
        # Where the time goes: user space vs kernel, then the top symbols.
        perf report -i "$PERF_FILE" --no-children --sort dso --stdio -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -n 15 >"$dir/by-dso.txt" || true
        perf report -i "$PERF_FILE" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -n 60 >"$dir/by-symbol.txt" || true
        echo "### $proxy: share of samples by binary (kernel = [kernel.kallsyms])"
        sed 's/^/    /' "$dir/by-dso.txt"
        echo "### $proxy: top symbols"
        head -n 25 "$dir/by-symbol.txt" | sed 's/^/    /'
    done | tee "$OUT/table.md"
    log "profiles (perf report -i FILE): $OUT/*-perf/perf.data"
    exit 0
fi
