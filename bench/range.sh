#!/usr/bin/env bash
# Range hits vs full hits (RFC 9110 ranges from cache): does a range hit cost more than a full hit
# of the same object?
#
# One nginx origin serves /1k.html (1,024 B) and /64k.html (65,536 B) with `Cache-Control:
# public, max-age=3600`. Vanish (release build) runs pinned to CPU 0, wrk to CPU 1. Each page is
# warmed and checked: a plain GET is a hit of the whole body, `Range: bytes=0-1023` is a 206 hit
# of 1,024 bytes. Then four cases (full and range, each page) run ROUNDS times, the order
# rotating between rounds, and the medians are printed as a markdown table with the cost ratio
# (full-hit req/s over range-hit req/s; the target is at most 1.2), also written to bench/out/.
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
#
# Usage: bench/range.sh            (env: DURATION=10s CONNS=64 ROUNDS=3 WARMUP=2s)
# Needs: Debian/Ubuntu (missing packages are installed with apt-get), 2+ CPUs, cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
RANGE="bytes=0-1023"

BENCH_NAME=range.sh
. "$ROOT/bench/lib.sh"

need_tools nginx:nginx wrk:wrk curl:curl taskset:util-linux
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (one for Vanish, one for wrk)"
build_vanish

bench_workdir vanish-range-bench
free_port ORIGIN_PORT
free_port VANISH_PORT
free_port VANISH_ADMIN_PORT

USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
mkdir -p "$WORK/origin/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$WORK/origin/www/1k.html"
head -c 65536 /dev/zero | tr '\0' 'b' >"$WORK/origin/www/64k.html"
cat >"$WORK/origin/nginx.conf" <<CONF
$USER_LINE
worker_processes 1;
daemon off;
pid $WORK/origin/nginx.pid;
error_log $WORK/origin/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/origin/client_body;
    proxy_temp_path $WORK/origin/proxy_temp;
    fastcgi_temp_path $WORK/origin/fastcgi_temp;
    uwsgi_temp_path $WORK/origin/uwsgi_temp;
    scgi_temp_path $WORK/origin/scgi_temp;
    default_type text/html;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WORK/origin/www;
        location / { add_header Cache-Control "public, max-age=3600"; }
    }
}
CONF
taskset -c "$LOAD_CPU" nginx -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" \
    >"$WORK/origin/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT" "origin nginx"

RUST_LOG=warn taskset -c "$PROXY_CPU" "$VANISH" serve \
    --upstream "http://127.0.0.1:$ORIGIN_PORT" \
    --listen "127.0.0.1:$VANISH_PORT" \
    --admin-listen "127.0.0.1:$VANISH_ADMIN_PORT" \
    >"$WORK/vanish.log" 2>&1 &
PIDS+=($!)
wait_port "$VANISH_PORT" "vanish"

PAGES=(1k 64k)
declare -A BYTES=([1k]=1024 [64k]=65536)
CASES=(1k.full 1k.range 64k.full 64k.range)

check() { # page mode expected-status expected-bytes
    local url="http://127.0.0.1:$VANISH_PORT/$1.html" args=() got
    [ "$2" = range ] && args=(-H "Range: $RANGE")
    got=$(curl -s "${args[@]}" -D "$WORK/h.txt" -o /dev/null -w '%{http_code} %{size_download}' "$url")
    [ "$got" = "$3 $4" ] || die "$1 $2: got status and bytes '$got', expected '$3 $4'"
    tr -d '\r' <"$WORK/h.txt" | grep -qi '^cache-status: *vanish; *hit' || {
        cat "$WORK/h.txt" >&2
        die "$1 $2: not a hit"
    }
}
for page in "${PAGES[@]}"; do
    for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$VANISH_PORT/$page.html"; done
    check "$page" full 200 "${BYTES[$page]}"
    check "$page" range 206 1024
    log "$page: full hit 200 of ${BYTES[$page]} B, range hit 206 of 1024 B"
done

to_us() { # "1.23ms" -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000;
        else f = 1;
        printf "%.0f", n * f }'
}
run_wrk() { # case duration -> "rps p50us p99us errors"
    local page=${1%%.*} mode=${1#*.} args=() out
    [ "$mode" = range ] && args=(-H "Range: $RANGE")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$2" --latency "${args[@]}" \
        "http://127.0.0.1:$VANISH_PORT/$page.html")
    local rps p50 p99 errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(",", "", v); n += v } }
        END {print n + 0}' <<<"$out")
    echo "$rps $p50 $p99 $errs"
}

log "warm-up runs ($WARMUP each)"
for c in "${CASES[@]}"; do run_wrk "$c" "$WARMUP" >/dev/null; done

declare -A RPS P50 P99 ERRS
for round in $(seq 1 "$ROUNDS"); do
    shift_by=$(((round - 1) % ${#CASES[@]}))
    order=("${CASES[@]:$shift_by}" "${CASES[@]:0:$shift_by}")
    for c in "${order[@]}"; do
        read -r rps p50 p99 errs < <(run_wrk "$c" "$DURATION")
        log "round $round $c: $rps req/s, p50 ${p50} us, p99 ${p99} us, errors $errs"
        RPS[$c]+="$rps "
        P50[$c]+="$p50 "
        P99[$c]+="$p99 "
        ERRS[$c]=$((${ERRS[$c]:-0} + errs))
    done
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/range-$(date -u +%Y%m%dT%H%M%SZ).md"
fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
declare -A M
{
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Vanish $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') pinned to CPU $PROXY_CPU, wrk to CPU $LOAD_CPU: \`wrk -t1 -c$CONNS -d$DURATION --latency\`; medians of $ROUNDS rounds; range requests send \`Range: $RANGE\`."
    echo
    echo "| page | request | status | req/s | p50 | p99 | errors |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    for c in "${CASES[@]}"; do
        M[$c]=$(median <<<"${RPS[$c]}")
        status=200
        [ "${c#*.}" = range ] && status="206 (1024 B)"
        printf '| %s | %s | %s | %.0f | %s | %s | %s |\n' "${c%%.*}" "${c#*.}" "$status" "${M[$c]}" \
            "$(fmt_ms "$(median <<<"${P50[$c]}")")" "$(fmt_ms "$(median <<<"${P99[$c]}")")" "${ERRS[$c]}"
    done
    echo
    echo "Per-round req/s (in round order):"
    echo
    for c in "${CASES[@]}"; do echo "- $c: ${RPS[$c]}"; done
    echo
    echo "| target | measured | met |"
    echo "| --- | --- | --- |"
    for page in "${PAGES[@]}"; do
        awk -v f="${M[$page.full]}" -v r="${M[$page.range]}" -v p="$page" 'BEGIN {
            x = f / r; printf "| %s: range hit costs <= 1.2 x a full hit | %.0f vs %.0f req/s (cost x%.2f) | %s |\n",
            p, r, f, x, (x <= 1.2 ? "yes" : "**no**") }'
    done
} | tee "$REPORT"
log "written to $REPORT"
