#!/usr/bin/env bash
# Profile-guided build of ringsip: the binary a production install should run.
#
#   loadtest/pgo.sh [--calls N]        writes target/pgo/ringsip
#
# 1. builds an instrumented ringsip (rustc -Cprofile-generate);
# 2. runs it under the loadtest scenarios stateless, stateful and register-auth
#    (compare.sh, sipp load, one repetition of N calls each, loopback only):
#    the profile is the hot path of a proxy, not of the test suite;
# 3. merges the profiles with llvm-profdata (the one of rustc's LLVM version;
#    installed from Debian's llvm-NN package when missing);
# 4. builds ringsip again with -Cprofile-use, into target/pgo/ringsip.
#
# Nothing is checked in: the profile is made fresh from the source it
# optimizes, so it never goes stale. Takes two release builds (about 10 min
# each on 2 cores) and about a minute of load. The result is measured like any
# other build: RINGSIP_ALT_BIN=target/pgo/ringsip loadtest/compare.sh … runs it
# as the row ringsip-alt, interleaved with the plain release build.
set -euo pipefail

LT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LT/.." && pwd)
OUT=$ROOT/target/pgo
# shellcheck source=loadtest/lib.sh
source "$LT/lib.sh"

CALLS=3000
while (($#)); do
    case $1 in
    --calls) CALLS=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $CALLS =~ ^[1-9][0-9]*$ ]] || die "--calls must be a positive number"

# llvm-profdata of the same major version as rustc's LLVM (the raw profile
# format changes between versions).
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[[ -n $llvm_major ]] || die "cannot read rustc's LLVM version (rustc -vV)"
find_profdata() {
    local c
    for c in "llvm-profdata-$llvm_major" "/usr/lib/llvm-$llvm_major/bin/llvm-profdata"; do
        command -v "$c" >/dev/null && { command -v "$c"; return; }
    done
    c=$(command -v llvm-profdata || true)
    [[ -n $c ]] && "$c" --version | grep -q "LLVM version $llvm_major\." && echo "$c"
}
PROFDATA=$(find_profdata || true)
if [[ -z $PROFDATA ]]; then
    log "apt-get install llvm-$llvm_major (for llvm-profdata)"
    as_root apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "llvm-$llvm_major" >&2 ||
        die "no llvm-profdata for LLVM $llvm_major (install llvm-$llvm_major)"
    PROFDATA=$(find_profdata) || die "llvm-profdata $llvm_major missing after installing llvm-$llvm_major"
fi

rm -rf "$OUT/raw"
mkdir -p "$OUT/raw"

# The plain build and the loadtest tools (compare.sh needs them), then the
# instrumented one in a target directory of its own (other RUSTFLAGS would
# rebuild everything in target/ each time).
build_tools
log "building the instrumented ringsip"
CARGO_TARGET_DIR=$OUT/gen RUSTFLAGS="-Cprofile-generate=$OUT/raw/build" \
    cargo build --release --quiet --bin ringsip --manifest-path "$ROOT/Cargo.toml" ||
    die "instrumented build failed"

for scenario in stateless stateful register-auth; do
    log "training: $scenario, $CALLS calls"
    # LOADTEST_WAIT: queue behind another compare.sh instead of failing.
    LOADTEST_WAIT=1 LLVM_PROFILE_FILE=$OUT/raw/ringsip-%p.profraw RINGSIP_ALT_BIN=$OUT/gen/release/ringsip \
        "$LT/compare.sh" --scenario "$scenario" --load sipp --reps 1 --calls "$CALLS" \
        --proxies ringsip-alt --no-build --out "$OUT/run-$scenario" >/dev/null ||
        die "training run $scenario failed (logs: $OUT/run-$scenario)"
done
shopt -s nullglob
raw=("$OUT"/raw/ringsip-*.profraw)
((${#raw[@]} > 0)) || die "the training runs wrote no profile (was ringsip stopped with SIGKILL?)"
"$PROFDATA" merge -o "$OUT/ringsip.profdata" "${raw[@]}"

log "building ringsip with the profile"
CARGO_TARGET_DIR=$OUT/use RUSTFLAGS="-Cprofile-use=$OUT/ringsip.profdata" \
    cargo build --release --quiet --bin ringsip --manifest-path "$ROOT/Cargo.toml" ||
    die "profile-guided build failed"
cp "$OUT/use/release/ringsip" "$OUT/ringsip"
log "wrote $OUT/ringsip"
