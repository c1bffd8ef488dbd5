#!/usr/bin/env bash
# Redis store benchmarks (issue 5). Two parts, one run:
#
# 1. `cargo bench -p vanish-redis --bench redis` (crates/redis/benches/redis.rs): store-level
#    L1 hit throughput vs the memory store, L2 hit latency vs one Redis round trip, purge
#    propagation to three nodes, a tag purge of 10,000 objects (standalone and a 3-shard
#    Cluster) and the SCAN-pattern delete users do today. It starts its own redis-server
#    processes on free loopback ports.
# 2. Proxy hit throughput: the `vanish` binary with the memory store (`vanish demo`, whose
#    built-in origin also serves the Redis-backed node) and with the Redis store and its L1
#    (`[store] kind = "redis"`), each pinned to CPU 0, wrk pinned to CPU 1, on /posts/1
#    (a cached hit); ROUNDS rounds alternating the two, medians reported.
#
# Results go to stdout and bench/out/redis-*.md. Everything listens on 127.0.0.1 only; every
# process started here is stopped on exit.
# Usage: bench/redis.sh     (env: DURATION=10s CONNS=64 ROUNDS=3 SKIP_STORE=1 SKIP_PROXY=1,
#                            and OBJECTS FILLER PURGES LOOKUPS SKIP_CLUSTER for part 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
export ROUNDS

BENCH_NAME=redis.sh
. "$ROOT/bench/lib.sh"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
install_missing "${need[@]}"
mkdir -p "$OUT_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

machine() {
    echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr); load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}

if [ -z "${SKIP_STORE:-}" ]; then
    log "part 1: store-level benchmarks (cargo bench -p vanish-redis --bench redis)"
    {
        machine
        echo
        (cd "$ROOT" && cargo bench -q -p vanish-redis --bench redis 2>/dev/null)
    } | tee "$OUT_DIR/redis-store-$STAMP.md"
fi

[ -n "${SKIP_PROXY:-}" ] && exit 0

log "part 2: proxy hit throughput, memory store vs Redis store with L1"
(cd "$ROOT" && cargo build --release -q -p vanish)
VANISH="$ROOT/target/release/vanish"
[ -n "${CARGO_TARGET_DIR:-}" ] && VANISH="$CARGO_TARGET_DIR/release/vanish"
[ -x "$VANISH" ] || die "no vanish binary at $VANISH"

bench_workdir vanish-redis-bench

wait_http() {
    for _ in $(seq 1 200); do
        curl -fs -o /dev/null "$1" && return 0
        sleep 0.05
    done
    die "$1 did not answer"
}

free_port RPORT
taskset -c 1 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

free_port ORIGIN; free_port MEM; free_port MEM_ADMIN
free_port RED; free_port RED_ADMIN
taskset -c 0 "$VANISH" demo --origin-listen "127.0.0.1:$ORIGIN" --listen "127.0.0.1:$MEM" \
    --admin-listen "127.0.0.1:$MEM_ADMIN" >"$WORK/mem.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/redis.toml" <<EOF
[store]
kind = "redis"

[redis]
url = "redis://127.0.0.1:$RPORT"
prefix = "bench-proxy"
EOF
wait_http "http://127.0.0.1:$ORIGIN/posts/1"
taskset -c 0 "$VANISH" serve --upstream "http://127.0.0.1:$ORIGIN" --listen "127.0.0.1:$RED" \
    --admin-listen "127.0.0.1:$RED_ADMIN" --config "$WORK/redis.toml" >"$WORK/red.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$RED_ADMIN/healthz"

for port in "$MEM" "$RED"; do
    curl -fs -o /dev/null "http://127.0.0.1:$port/posts/1"
    sleep 0.2
    status=$(curl -fsi "http://127.0.0.1:$port/posts/1" | tr -d '\r' | awk -F': ' 'tolower($1)=="cache-status"{print $2}')
    case "$status" in *hit*) ;; *) die "port $port does not answer a hit: $status" ;; esac
done

rate() {
    local out
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$1/posts/1")
    # Only clean runs count: every answer a 2xx, no socket errors.
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        log "port $1: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ')"
        die "wrk saw errors or non-2xx answers; not a valid hit measurement"
    fi
    awk '/Requests\/sec/{print $2}' <<<"$out"
}
mem_rates=(); red_rates=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        mem_rates+=("$(rate "$MEM")"); red_rates+=("$(rate "$RED")")
    else
        red_rates+=("$(rate "$RED")"); mem_rates+=("$(rate "$MEM")")
    fi
    log "round $r: memory ${mem_rates[-1]} req/s, redis+L1 ${red_rates[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
M=$(median "${mem_rates[@]}"); R=$(median "${red_rates[@]}")
{
    machine
    echo
    echo "## Proxy hit throughput: memory store vs Redis store with L1 (wrk -t1 -c$CONNS -d$DURATION, /posts/1, median of $ROUNDS)"
    echo
    echo "| store | requests/s | rounds |"
    echo "| --- | --- | --- |"
    echo "| memory store | $M | ${mem_rates[*]} |"
    echo "| Redis store, L1 hits | $R | ${red_rates[*]} |"
    echo
    python3 -c "m=$M; r=$R; print(f'Redis+L1 / memory: {100*r/m:.1f}% (target within 10%: {\"met\" if r >= 0.9*m else \"not met\"})')"
} | tee "$OUT_DIR/redis-proxy-$STAMP.md"
