#!/usr/bin/env bash
# Proxy hit throughput (issue 2): Vanish vs nginx proxy_cache vs Varnish, side by side.
#
# One nginx origin serves two static pages (1 KiB and 64 KiB, `Cache-Control: public,
# max-age=3600`). In front of it run Vanish, nginx with proxy_cache and varnishd, each pinned
# to CPU 0 (`taskset -c 0`); wrk runs pinned to CPU 1. Each cache is warmed and checked to
# answer a hit, then every (proxy, page) pair is measured ROUNDS times, the proxy order
# rotating between rounds, and the medians are printed as a markdown table (also written to
# bench/out/). Everything listens on 127.0.0.1 only; every process started here is stopped on
# exit.
#
# Usage: bench/proxy.sh            (env: DURATION=10s CONNS=64 ROUNDS=3 WARMUP=2s)
#        VANISH_SYSTEM_ALLOC=1 bench/proxy.sh   adds a Vanish built with the system allocator
#        (--no-default-features, in target/sysalloc) beside the default jemalloc build
#        VANISH_BASELINE=REV bench/proxy.sh   adds Vanish built at git revision REV (a worktree
#        under target/, built into target/baseline) beside this build: the ratio of the two,
#        measured in the same rounds, is printed (a regression check of the hit path)
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

BENCH_NAME=proxy.sh
. "$ROOT/bench/lib.sh"

# ---------------------------------------------------------------------------------------------
# Tools.
need_tools nginx:nginx varnishd:varnish wrk:wrk curl:curl taskset:util-linux
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (one for the proxies, one for wrk)"
build_vanish
if [ -n "${VANISH_SYSTEM_ALLOC:-}" ]; then
    log "building vanish with the system allocator (release, target/sysalloc)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target/sysalloc" cargo build --release -p vanish --no-default-features -q)
fi
if [ -n "${VANISH_BASELINE:-}" ]; then
    BASE_REV=$(git -C "$ROOT" rev-parse --short "$VANISH_BASELINE") || die "VANISH_BASELINE=$VANISH_BASELINE: not a git revision"
    log "building vanish at $BASE_REV (release, target/baseline) as the baseline"
    BASE_SRC="$ROOT/target/baseline-src"
    git -C "$ROOT" worktree remove --force "$BASE_SRC" >/dev/null 2>&1 || rm -rf "$BASE_SRC"
    git -C "$ROOT" worktree add --detach "$BASE_SRC" "$BASE_REV" >/dev/null 2>&1
    (cd "$BASE_SRC" && CARGO_TARGET_DIR="$ROOT/target/baseline" cargo build --release -p vanish -q)
    git -C "$ROOT" worktree remove --force "$BASE_SRC"
fi

# ---------------------------------------------------------------------------------------------
# Processes and cleanup.
bench_workdir vanish-proxy-bench

free_port ORIGIN_PORT
free_port VANISH_PORT
free_port VANISH_ADMIN_PORT
free_port NGINX_PORT
free_port VARNISH_PORT
free_port SYSALLOC_PORT
free_port SYSALLOC_ADMIN_PORT
free_port BASELINE_PORT
free_port BASELINE_ADMIN_PORT

USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"

nginx_common() { # prefix
    cat <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() { # prefix
    cat <<EOF
    access_log off;
    # nginx defaults otherwise (tcp_nopush stays off: with it, 64 KiB hits stall ~40 ms on
    # loopback).
    sendfile on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy_temp;
    fastcgi_temp_path $1/fastcgi_temp;
    uwsgi_temp_path $1/uwsgi_temp;
    scgi_temp_path $1/scgi_temp;
EOF
}

# ---- origin: nginx serving two static files.
mkdir -p "$WORK/origin/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$WORK/origin/www/1k.html"
head -c 65536 /dev/zero | tr '\0' 'b' >"$WORK/origin/www/64k.html"
{
    nginx_common "$WORK/origin"
    echo "http {"
    nginx_http_common "$WORK/origin"
    cat <<EOF
    default_type text/html;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WORK/origin/www;
        location / { add_header Cache-Control "public, max-age=3600"; }
    }
}
EOF
} >"$WORK/origin/nginx.conf"
# The origin is idle once the caches are warm; keep it off the proxies' CPU.
taskset -c "$LOAD_CPU" nginx -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" \
    >"$WORK/origin/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT" "origin nginx"

# ---- Vanish.
start_vanish() { # name binary port admin-port
    mkdir -p "$WORK/$1"
    RUST_LOG=warn taskset -c "$PROXY_CPU" "$2" serve \
        --upstream "http://127.0.0.1:$ORIGIN_PORT" \
        --listen "127.0.0.1:$3" \
        --admin-listen "127.0.0.1:$4" \
        >"$WORK/$1/stdout.log" 2>"$WORK/$1/stderr.log" &
    PIDS+=($!)
    wait_port "$3" "$1"
}
start_vanish vanish "$VANISH" "$VANISH_PORT" "$VANISH_ADMIN_PORT"
if [ -n "${VANISH_SYSTEM_ALLOC:-}" ]; then
    start_vanish sysalloc "$ROOT/target/sysalloc/release/vanish" "$SYSALLOC_PORT" "$SYSALLOC_ADMIN_PORT"
fi
if [ -n "${VANISH_BASELINE:-}" ]; then
    start_vanish baseline "$ROOT/target/baseline/release/vanish" "$BASELINE_PORT" "$BASELINE_ADMIN_PORT"
fi

# ---- nginx proxy_cache.
mkdir -p "$WORK/nginx/cache"
{
    nginx_common "$WORK/nginx"
    echo "http {"
    nginx_http_common "$WORK/nginx"
    cat <<EOF
    proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=bench:16m max_size=1g inactive=60m use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 16; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF
} >"$WORK/nginx/nginx.conf"
taskset -c "$PROXY_CPU" nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$NGINX_PORT" "nginx proxy_cache"

# ---- Varnish (builtin VCL behaviour, one backend).
mkdir -p "$WORK/varnish"
cat >"$WORK/varnish/default.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN_PORT"; }
EOF
taskset -c "$PROXY_CPU" varnishd -F -j none -n "$WORK/varnish/n" \
    -a "127.0.0.1:$VARNISH_PORT" -T "127.0.0.1:0" \
    -f "$WORK/varnish/default.vcl" -s malloc,256m \
    >"$WORK/varnish/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$VARNISH_PORT" "varnishd"

# ---------------------------------------------------------------------------------------------
# Warm and verify.
declare -A PORT=([vanish]=$VANISH_PORT [nginx]=$NGINX_PORT [varnish]=$VARNISH_PORT)
declare -A LABEL=([vanish]="Vanish" [nginx]="nginx proxy_cache" [varnish]="Varnish")
PROXIES=(vanish nginx varnish)
if [ -n "${VANISH_SYSTEM_ALLOC:-}" ]; then
    PORT[sysalloc]=$SYSALLOC_PORT
    LABEL[sysalloc]="Vanish, system allocator"
    PROXIES+=(sysalloc)
fi
if [ -n "${VANISH_BASELINE:-}" ]; then
    PORT[baseline]=$BASELINE_PORT
    LABEL[baseline]="Vanish at $BASE_REV (baseline)"
    PROXIES+=(baseline)
fi
PAGES=(1k 64k)
declare -A BYTES=([1k]=1024 [64k]=65536)

is_hit() { # proxy headers-file
    case "$1" in
    vanish | sysalloc | baseline) grep -qi '^cache-status: *vanish; *hit' "$2" ;;
    nginx) grep -qi '^x-cache-status: *HIT' "$2" ;;
    varnish) grep -Eqi '^x-varnish: *[0-9]+ +[0-9]+' "$2" ;;
    esac
}

for p in "${PROXIES[@]}"; do
    for page in "${PAGES[@]}"; do
        url="http://127.0.0.1:${PORT[$p]}/$page.html"
        for _ in 1 2 3; do curl -s -o /dev/null "$url"; done
        size=$(curl -s -D "$WORK/h.txt" -o "$WORK/body" -w '%{size_download}' "$url")
        tr -d '\r' <"$WORK/h.txt" >"$WORK/h2.txt"
        [ "$size" = "${BYTES[$page]}" ] || die "$p $page: got $size bytes, expected ${BYTES[$page]}"
        is_hit "$p" "$WORK/h2.txt" || {
            cat "$WORK/h2.txt" >&2
            die "$p $page: the warmed response is not a hit"
        }
        log "$p $page: hit ($(grep -Ei '^(cache-status|x-cache-status|x-varnish|age):' "$WORK/h2.txt" | tr '\n' ' '))"
    done
done

# ---------------------------------------------------------------------------------------------
# Measure.
to_us() { # "1.23ms" -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000;
        else if (u == "m") f = 60000000; else f = 1;
        printf "%.0f", n * f }'
}

run_wrk() { # proxy page duration -> "rps p50us p99us errors"
    local url="http://127.0.0.1:${PORT[$1]}/$2.html" out
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$3" --latency "$url")
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
for p in "${PROXIES[@]}"; do
    for page in "${PAGES[@]}"; do run_wrk "$p" "$page" "$WARMUP" >/dev/null; done
done

declare -A RPS P50 P99 ERRS
for round in $(seq 1 "$ROUNDS"); do
    # Rotate the order so no proxy always runs first or last.
    shift_by=$(((round - 1) % ${#PROXIES[@]}))
    order=("${PROXIES[@]:$shift_by}" "${PROXIES[@]:0:$shift_by}")
    for page in "${PAGES[@]}"; do
        for p in "${order[@]}"; do
            read -r rps p50 p99 errs < <(run_wrk "$p" "$page" "$DURATION")
            log "round $round $p $page: $rps req/s, p50 ${p50} us, p99 ${p99} us, errors $errs"
            RPS[$p.$page]+="$rps "
            P50[$p.$page]+="$p50 "
            P99[$p.$page]+="$p99 "
            ERRS[$p.$page]=$((${ERRS[$p.$page]:-0} + errs))
        done
    done
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------------------------
# Report.
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/proxy-$(date -u +%Y%m%dT%H%M%SZ).md"
fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
declare -A M_RPS M_P50 M_P99
{
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Vanish ${VANISH_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}, $(nginx -v 2>&1 | sed 's/.*: //'), $(varnishd -V 2>&1 | head -1 | sed 's/ revision.*//;s/[()]//g'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')."
    echo "Proxies pinned to CPU $PROXY_CPU, wrk to CPU $LOAD_CPU: \`wrk -t1 -c$CONNS -d$DURATION --latency\`; medians of $ROUNDS rounds."
    echo
    echo "| proxy | page | req/s | p50 | p99 | errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    for page in "${PAGES[@]}"; do
        for p in "${PROXIES[@]}"; do
            M_RPS[$p.$page]=$(median <<<"${RPS[$p.$page]}")
            M_P50[$p.$page]=$(median <<<"${P50[$p.$page]}")
            M_P99[$p.$page]=$(median <<<"${P99[$p.$page]}")
            printf '| %s | %s | %.0f | %s | %s | %s |\n' "${LABEL[$p]}" "$page" "${M_RPS[$p.$page]}" \
                "$(fmt_ms "${M_P50[$p.$page]}")" "$(fmt_ms "${M_P99[$p.$page]}")" "${ERRS[$p.$page]}"
        done
    done
    echo
    echo "Per-round req/s (in round order):"
    echo
    for page in "${PAGES[@]}"; do
        for p in "${PROXIES[@]}"; do
            echo "- ${LABEL[$p]} $page: ${RPS[$p.$page]}"
        done
    done
    echo
    echo "| target (1 KiB page) | measured | met |"
    echo "| --- | --- | --- |"
    v=${M_RPS[vanish.1k]} n=${M_RPS[nginx.1k]} r=${M_RPS[varnish.1k]}
    awk -v v="$v" -v n="$n" 'BEGIN { printf "| Vanish req/s >= nginx proxy_cache | %.0f vs %.0f (x%.2f) | %s |\n", v, n, v / n, (v >= n ? "yes" : "**no**") }'
    awk -v v="$v" -v r="$r" 'BEGIN { printf "| Vanish req/s >= 1.3 x Varnish | %.0f vs %.0f (x%.2f) | %s |\n", v, r, v / r, (v >= 1.3 * r ? "yes" : "**no**") }'
    v=${M_P99[vanish.1k]} n=${M_P99[nginx.1k]} r=${M_P99[varnish.1k]}
    awk -v v="$v" -v n="$n" -v r="$r" 'BEGIN { printf "| Vanish p99 <= nginx and Varnish | %.2f ms vs %.2f / %.2f ms | %s |\n", v / 1000, n / 1000, r / 1000, (v <= n && v <= r ? "yes" : "**no**") }'
    if [ -n "${VANISH_SYSTEM_ALLOC:-}" ]; then
        echo
        for page in "${PAGES[@]}"; do
            awk -v v="${M_RPS[vanish.$page]}" -v g="${M_RPS[sysalloc.$page]}" -v page="$page" 'BEGIN { printf "jemalloc vs system allocator, %s hits: %.0f vs %.0f req/s (x%.2f)\n\n", page, v, g, v / g }'
        done
    fi
    if [ -n "${VANISH_BASELINE:-}" ]; then
        echo
        for page in "${PAGES[@]}"; do
            awk -v v="${M_RPS[vanish.$page]}" -v b="${M_RPS[baseline.$page]}" -v vp="${M_P99[vanish.$page]}" -v bp="${M_P99[baseline.$page]}" -v page="$page" -v rev="$BASE_REV" 'BEGIN { printf "this build vs %s, %s hits: %.0f vs %.0f req/s (x%.2f), p99 %.2f vs %.2f ms\n\n", rev, page, v, b, v / b, vp / 1000, bp / 1000 }'
        done
    fi
} | tee "$REPORT"
log "written to $REPORT"
