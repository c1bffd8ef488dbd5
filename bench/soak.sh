#!/usr/bin/env bash
# Soak test: MINUTES (default 10) of mixed load on a release Vanish, loopback only, bounded.
#
#   bench/soak.sh [MINUTES]
#
# 1. cargo build --release -p vanish
# 2. starts bench/soak_origin.py (Python 3 stdlib origin: cacheable pages with Surrogate-Key
#    tags, some with Vary: Accept-Language, and injected faults: slow 1%, 503 0.5%, TCP reset
#    mid-body 0.5%, each logged)
# 3. starts `vanish serve --memory-capacity 64MiB` in front of it (so eviction happens)
# 4. drives for MINUTES: checked asyncio clients (hot set + long tail, read-after-purge checks
#    on every response), ~100 purges/s of every selector type through the admin API, and, when
#    wrk is installed, extra hit/miss volume from wrk
# 5. samples the vanish process's RSS (/proc/PID/status) every second, and writes a summary.
#
# SOAK_BIN=path runs that binary instead of building; SOAK_CAPACITY=256MiB changes the capacity;
# SOAK_PURGE_RATE=10 sends fewer purges a second (100 by default; fewer lets the store fill up).
# Results go to bench/out/soak-<time>/ (summary.json, summary.md, logs); the figures of the
# reference run are in docs/benchmarks-soak.md. Needs: cargo, python3; wrk optional
# (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${1:-10}
DURATION=$(python3 -c "import sys; m=float(sys.argv[1]); assert 0 < m <= 120, 'MINUTES must be in (0, 120]'; print(int(m*60))" "$MINUTES")
OUT=${SOAK_OUT:-bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ)}
CAPACITY=${SOAK_CAPACITY:-64MiB}
mkdir -p "$OUT"

if [ -n "${SOAK_BIN:-}" ]; then # another build (e.g. --no-default-features) or a wrapper
  BIN=$SOAK_BIN
else
  echo "== building vanish (release)"
  cargo build --release -p vanish
  BIN=${CARGO_TARGET_DIR:-target}/release/vanish
fi

read -r ORIGIN_PORT PROXY_PORT ADMIN_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_http() { # url, seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "bench/soak.sh: $1 did not answer" >&2
  return 1
}

: > "$OUT/faults.jsonl"
python3 bench/soak_origin.py origin --port "$ORIGIN_PORT" --fault-log "$OUT/faults.jsonl" \
  > "$OUT/origin.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$ORIGIN_PORT/__stats" 10

"$BIN" serve --upstream "http://127.0.0.1:$ORIGIN_PORT" \
  --listen "127.0.0.1:$PROXY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --memory-capacity "$CAPACITY" > "$OUT/vanish.log" 2>&1 &
VANISH_PID=$!
PIDS+=($VANISH_PID)
wait_http "http://127.0.0.1:$ADMIN_PORT/healthz" 10

rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$VANISH_PID/status"; } # kB
RSS_START=$(rss VmRSS)
echo "== vanish pid $VANISH_PID, RSS at start ${RSS_START} kB; running ${DURATION}s; output in $OUT"

# Sampler: one line a second (unix time, VmRSS kB, VmHWM kB, the store's own accounting from
# /metrics: objects and bytes, and the allocator's allocated and resident bytes, 0 without
# jemalloc).
(
  while kill -0 "$VANISH_PID" 2>/dev/null; do
    store=$(curl -s --max-time 1 "http://127.0.0.1:$ADMIN_PORT/metrics" \
      | awk '$1 == "vanish_store_objects" {o = $2} $1 == "vanish_store_bytes" {b = $2}
             $1 == "vanish_allocator_allocated_bytes" {a = $2} $1 == "vanish_allocator_resident_bytes" {r = $2}
             END {printf "%d %d %d %d", o, b, a, r}')
    echo "$(date +%s) $(rss VmRSS) $(rss VmHWM) ${store:-0 0 0 0}"
    sleep 1
  done
) > "$OUT/rss.tsv" 2>/dev/null &
PIDS+=($!)

WRK_PID=
if command -v wrk >/dev/null 2>&1; then
  cat > "$OUT/soak.lua" <<'EOF'
-- Extra volume: 85% a hot set of 200 pages, 15% the long tail; two hosts.
local hosts = {"soak.test", "b.soak.test"}
statuses = {} -- global: done() reads each thread's copy with thread:get
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
function request()
  local path
  if math.random() < 0.85 then
    path = "/hot/" .. math.random(0, 199)
  else
    path = "/tail/" .. math.random(0, 49) .. "/" .. math.random(0, 999)
  end
  local host = hosts[1]
  if math.random() < 0.2 then host = hosts[2] end
  return wrk.format("GET", path, {Host = host})
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do io.write(string.format("wrk-status %s %d\n", k, v)) end
  end
  local e = summary.errors
  io.write(string.format("wrk-errors connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("wrk-requests %d\n", summary.requests))
  io.write(string.format("wrk-latency-ms p50=%.2f p99=%.2f max=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
EOF
  wrk -t1 -c16 -d"${DURATION}s" --timeout 30s -s "$OUT/soak.lua" \
    "http://127.0.0.1:$PROXY_PORT" > "$OUT/wrk.txt" 2>&1 &
  WRK_PID=$!
  PIDS+=($WRK_PID)
else
  echo "bench/soak.sh: wrk not installed; checked clients only (apt-get install wrk for more volume)"
fi

python3 bench/soak_origin.py drive \
  --proxy "http://127.0.0.1:$PROXY_PORT" --admin "http://127.0.0.1:$ADMIN_PORT" \
  --origin "http://127.0.0.1:$ORIGIN_PORT" --fault-log "$OUT/faults.jsonl" \
  --seconds "$DURATION" --purge-rate "${SOAK_PURGE_RATE:-100}" --out "$OUT/driver.json" > "$OUT/driver.log" 2>&1 || {
    echo "bench/soak.sh: driver failed:" >&2; tail -20 "$OUT/driver.log" >&2; exit 1; }
if [ -n "$WRK_PID" ]; then
  wait "$WRK_PID" || true
fi

RSS_END=$(rss VmRSS)
RSS_MAX=$(rss VmHWM)
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" > "$OUT/metrics.txt" || true
# Leak or retention? Empty the cache, let the reclaimer run, and look again.
curl -s -X POST -H 'content-type: application/json' -d '{"type":"all"}' "http://127.0.0.1:$ADMIN_PORT/invalidate" > /dev/null || true
sleep 10
RSS_EMPTIED=$(rss VmRSS)
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" > "$OUT/metrics-emptied.txt" || true
# How much of that is memory the allocator holds but no object uses? Ask glibc to give free
# pages back (gdb attaches for a moment, after the load has ended) and look once more.
RSS_TRIMMED=0
if command -v gdb >/dev/null 2>&1; then
  gdb -p "$VANISH_PID" -batch -ex 'call (int) malloc_trim(0)' > "$OUT/malloc_trim.txt" 2>&1 || true
  RSS_TRIMMED=$(rss VmRSS)
fi
curl -s "http://127.0.0.1:$ORIGIN_PORT/__stats" > "$OUT/origin_stats.json" || true
kill -0 "$VANISH_PID" 2>/dev/null && VANISH_ALIVE=yes || VANISH_ALIVE=no

python3 - "$OUT" "$RSS_START" "$RSS_END" "$RSS_MAX" "$CAPACITY" "$VANISH_ALIVE" "$DURATION" "$RSS_EMPTIED" "$RSS_TRIMMED" <<'EOF'
import json, os, platform, re, subprocess, sys
out, rss_start, rss_end, rss_max, capacity, alive, duration, rss_emptied, rss_trimmed = sys.argv[1:]
rss_start, rss_end, rss_max = int(rss_start), int(rss_end), int(rss_max)
units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
m = re.fullmatch(r"(\d+)(KiB|MiB|GiB)", capacity)
cap = int(m.group(1)) * units[m.group(2)]
d = json.load(open(f"{out}/driver.json"))
origin = json.load(open(f"{out}/origin_stats.json"))
wrk = {}
if os.path.exists(f"{out}/wrk.txt"):
    for line in open(f"{out}/wrk.txt"):
        if line.startswith("wrk-status "):
            _, code, n = line.split()
            wrk.setdefault("status", {})[code] = int(n)
        elif line.startswith("wrk-errors "):
            wrk["errors"] = {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
        elif line.startswith("wrk-requests "):
            wrk["requests"] = int(line.split()[1])
        elif line.startswith("wrk-latency-ms "):
            wrk["latency_ms"] = {k: float(v) for k, v in (p.split("=") for p in line.split()[1:])}
metrics = {}
for line in open(f"{out}/metrics.txt"):
    if line.startswith("vanish_") and " " in line:
        k, v = line.rsplit(" ", 1)
        metrics[k] = float(v)
samples = [l.split() for l in open(f"{out}/rss.tsv") if len(l.split()) == 7]
max_sampled = max(int(s[1]) for s in samples) if samples else None
budget_kb = cap * 1.2 / 1024
wrk_non200 = sum(n for c, n in wrk.get("status", {}).items() if c != "200")
wrk_errs = sum(wrk.get("errors", {}).values())
summary = {
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")},
    "duration_s": int(duration),
    "capacity_bytes": cap,
    "vanish_alive_at_end": alive == "yes",
    "checked_client": d,
    "wrk": wrk,
    "requests_served_total": d["requests"] + wrk.get("requests", 0),
    "origin": origin,
    "store_bytes_max_sampled": max((int(s[4]) for s in samples), default=None),
    "allocator_allocated_bytes_max_sampled": max((int(s[5]) for s in samples), default=None) or None,
    "allocator_resident_bytes_max_sampled": max((int(s[6]) for s in samples), default=None) or None,
    "store_after_purge_all": {k: v for k, v in ((l.rsplit(" ", 1)[0], float(l.rsplit(" ", 1)[1])) for l in open(f"{out}/metrics-emptied.txt") if l.startswith("vanish_store_"))},
    "rss_kb": {"start": rss_start, "end": rss_end, "max_VmHWM": rss_max, "max_sampled": max_sampled,
               "after_purge_all_10s": int(rss_emptied),
               "after_purge_all_and_malloc_trim": int(rss_trimmed) or None,
               "budget_capacity_plus_20pct": round(budget_kb),
               "max_minus_start": rss_max - rss_start,
               "within_budget_raw": rss_max <= budget_kb,
               "within_budget_minus_start": (rss_max - rss_start) <= budget_kb},
    "metrics_at_end": {k: v for k, v in metrics.items() if k.startswith(("vanish_store", "vanish_requests_total", "vanish_origin_errors", "vanish_purged_objects_total"))},
    "wrk_non200_plus_socket_errors": wrk_non200 + wrk_errs,
    "origin_faults_503_plus_reset": origin.get("503", 0) + origin.get("reset", 0),
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
EOF
echo "== summary: $OUT/summary.json"
