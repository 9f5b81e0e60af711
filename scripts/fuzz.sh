#!/usr/bin/env bash
# Run every cargo-fuzz target of the project for SECONDS each (default 60), one after the other
# in a single libFuzzer process (one job, one core), seeded with the corpus the seed-generator
# tests write, and print executions and final coverage per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # TARGET: e.g. log_replay, fmap (default: all)
#
# Targets: famfs-log/fuzz (superblock, log_header, log_entry, log_replay, mounts,
# sysfs_values) and fuse-famfs-proto/fuzz (request, fmap, reply); see the README.md beside each.
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags
# (AddressSanitizer, sanitizer coverage). Targets are built optimized with debug assertions and
# overflow checks (-O -a). cargo-fuzz is installed from crates.io when missing.
#
# Corpora grow in <crate>/fuzz/corpus/<target>, crashes land in <crate>/fuzz/artifacts/<target>,
# logs in <crate>/fuzz/logs/<target>.log (all git-ignored). Exit status 1 if any target crashed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

seconds=${1:-60}
shift || true
want=("$@")

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# crate directory → its targets.
declare -A targets=(
    [famfs-log]="superblock log_header log_entry log_replay mounts sysfs_values"
    [fuse-famfs-proto]="request fmap reply"
)
selected() {
    [ ${#want[@]} -eq 0 ] && return 0
    local w
    for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
    return 1
}

summary=()
failed=0
for crate in famfs-log fuse-famfs-proto; do
    run=()
    for t in ${targets[$crate]}; do selected "$t" && run+=("$t"); done
    [ ${#run[@]} -eq 0 ] && continue
    echo "=== $crate: seeds, build" >&2
    FAMFS_FUZZ_SEEDS="$root/$crate/fuzz/corpus" \
        cargo test -q -p "$crate" --test fuzz_seeds >/dev/null
    (cd "$crate" && cargo fuzz build -O -a)
    mkdir -p "$crate/fuzz/logs"
    for t in "${run[@]}"; do
        log="$root/$crate/fuzz/logs/$t.log"
        echo "=== $crate/$t: ${seconds}s" >&2
        status=ok
        if ! (cd "$crate" && cargo fuzz run -O -a "$t" -- \
            -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1); then
            status=CRASH
            failed=1
            grep -E "^(artifact_prefix|.*Test unit written)" "$log" >&2 || tail -20 "$log" >&2
        fi
        last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1)
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
        cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | cut -d' ' -f2 || true)
        ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | cut -d' ' -f2 || true)
        summary+=("$(printf '%-18s %-14s %12s %8s %8s  %s' "$crate" "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$status")")
    done
done

printf '\n%-18s %-14s %12s %8s %8s  %s\n' crate target executions cov ft status
printf '%s\n' "${summary[@]}"
exit "$failed"
