#!/usr/bin/env bash
# Decoded hits (issue 13): an identity client served from a stored gzip body, against a plain
# identity hit, side by side.
#
# One nginx origin serves the same text page (1 KiB and 64 KiB) twice: as it is under /plain/,
# and gzip-compressed (`Content-Encoding: gzip`, as an origin that always compresses) under
# /gz/; both `Cache-Control: public, max-age=3600`. Vanish, pinned to CPU 0 (`taskset -c 0`),
# stores one object per page: identity for /plain/, gzip for /gz/. wrk (pinned to CPU 1) sends
# no `Accept-Encoding`, so /plain/ hits are served as stored and /gz/ hits are decoded on the
# fly. Each (case, page) pair is measured ROUNDS times, the case order rotating between rounds,
# and the medians and the decoded/plain ratio are printed as a markdown table (also written to
# bench/out/). Target: decoded hits at least 0.5x the plain hits' req/s. Everything listens on
# 127.0.0.1 only; every process started here is stopped on exit.
#
# Usage: bench/compress.sh            (env: DURATION=10s CONNS=64 ROUNDS=3 WARMUP=2s)
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

BENCH_NAME=compress.sh
. "$ROOT/bench/lib.sh"

need_tools nginx:nginx wrk:wrk curl:curl taskset:util-linux gzip:gzip
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (one for Vanish, one for wrk)"
build_vanish

bench_workdir vanish-compress-bench
free_port ORIGIN_PORT
free_port VANISH_PORT
free_port VANISH_ADMIN_PORT

# ---- origin: nginx serving each page as it is and gzip-compressed.
PAGES=(1k 64k)
declare -A BYTES=([1k]=1024 [64k]=65536)
mkdir -p "$WORK/origin/www/plain" "$WORK/origin/www/gz"
for page in "${PAGES[@]}"; do
    # Text that compresses as pages do (markup around varying numbers), cut to size.
    awk -v n="${BYTES[$page]}" 'BEGIN { s = ""; for (i = 1; length(s) < n; i++)
        s = s sprintf("<li class=\"item\" id=\"i%d\"><a href=\"/p/%d\">item %d</a></li>\n", i, i, i)
        printf "%s", substr(s, 1, n) }' >"$WORK/origin/www/plain/$page.html"
    gzip -6 -n -c "$WORK/origin/www/plain/$page.html" >"$WORK/origin/www/gz/$page.html"
    log "$page page: $(stat -c %s "$WORK/origin/www/gz/$page.html") bytes gzip-compressed"
done
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
cat >"$WORK/origin/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $WORK/origin/nginx.pid;
error_log $WORK/origin/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    gzip off;
    default_type text/html;
    client_body_temp_path $WORK/origin/client_body;
    proxy_temp_path $WORK/origin/proxy_temp;
    fastcgi_temp_path $WORK/origin/fastcgi_temp;
    uwsgi_temp_path $WORK/origin/uwsgi_temp;
    scgi_temp_path $WORK/origin/scgi_temp;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WORK/origin/www;
        location /plain/ { add_header Cache-Control "public, max-age=3600"; }
        location /gz/ {
            add_header Cache-Control "public, max-age=3600";
            add_header Content-Encoding gzip;
        }
    }
}
EOF
taskset -c "$LOAD_CPU" nginx -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" \
    >"$WORK/origin/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT" "origin nginx"

# ---- Vanish.
mkdir -p "$WORK/vanish"
RUST_LOG=warn taskset -c "$PROXY_CPU" "$VANISH" serve \
    --upstream "http://127.0.0.1:$ORIGIN_PORT" \
    --listen "127.0.0.1:$VANISH_PORT" \
    --admin-listen "127.0.0.1:$VANISH_ADMIN_PORT" \
    >"$WORK/vanish/stdout.log" 2>"$WORK/vanish/stderr.log" &
PIDS+=($!)
wait_port "$VANISH_PORT" "vanish"

# ---- Warm and verify: both cases are hits, delivered identity, the page's exact bytes.
CASES=(plain gz)
declare -A LABEL=([plain]="plain identity hit" [gz]="identity client, stored gzip (decoded)")
for c in "${CASES[@]}"; do
    for page in "${PAGES[@]}"; do
        url="http://127.0.0.1:$VANISH_PORT/$c/$page.html"
        for _ in 1 2 3; do curl -s -o /dev/null "$url"; done
        curl -s -D "$WORK/h.txt" -o "$WORK/body" "$url"
        tr -d '\r' <"$WORK/h.txt" >"$WORK/h2.txt"
        cmp -s "$WORK/body" "$WORK/origin/www/plain/$page.html" ||
            die "$c $page: the body is not the page's bytes"
        grep -qi '^cache-status: *vanish; *hit' "$WORK/h2.txt" || {
            cat "$WORK/h2.txt" >&2
            die "$c $page: the warmed response is not a hit"
        }
        ! grep -qi '^content-encoding:' "$WORK/h2.txt" || die "$c $page: sent encoded to an identity client"
        log "$c $page: hit, identity ($(grep -Ei '^(etag|content-length|vary):' "$WORK/h2.txt" | tr '\n' ' '))"
    done
done

# ---- Measure.
to_us() { # "1.23ms" -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000;
        else if (u == "m") f = 60000000; else f = 1;
        printf "%.0f", n * f }'
}

run_wrk() { # case page duration -> "rps p50us p99us errors"
    local url="http://127.0.0.1:$VANISH_PORT/$1/$2.html" out
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
for c in "${CASES[@]}"; do
    for page in "${PAGES[@]}"; do run_wrk "$c" "$page" "$WARMUP" >/dev/null; done
done

declare -A RPS P50 P99 ERRS
for round in $(seq 1 "$ROUNDS"); do
    shift_by=$(((round - 1) % ${#CASES[@]}))
    order=("${CASES[@]:$shift_by}" "${CASES[@]:0:$shift_by}")
    for page in "${PAGES[@]}"; do
        for c in "${order[@]}"; do
            read -r rps p50 p99 errs < <(run_wrk "$c" "$page" "$DURATION")
            log "round $round $c $page: $rps req/s, p50 ${p50} us, p99 ${p99} us, errors $errs"
            RPS[$c.$page]+="$rps "
            P50[$c.$page]+="$p50 "
            P99[$c.$page]+="$p99 "
            ERRS[$c.$page]=$((${ERRS[$c.$page]:-0} + errs))
        done
    done
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---- Report.
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/compress-$(date -u +%Y%m%dT%H%M%SZ).md"
fmt_ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
declare -A M_RPS
{
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Vanish $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')."
    echo "Vanish pinned to CPU $PROXY_CPU, wrk to CPU $LOAD_CPU: \`wrk -t1 -c$CONNS -d$DURATION --latency\`, no Accept-Encoding; medians of $ROUNDS rounds."
    echo
    echo "| case | page | req/s | p50 | p99 | errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    for page in "${PAGES[@]}"; do
        for c in "${CASES[@]}"; do
            M_RPS[$c.$page]=$(median <<<"${RPS[$c.$page]}")
            printf '| %s | %s | %.0f | %s | %s | %s |\n' "${LABEL[$c]}" "$page" "${M_RPS[$c.$page]}" \
                "$(fmt_ms "$(median <<<"${P50[$c.$page]}")")" "$(fmt_ms "$(median <<<"${P99[$c.$page]}")")" \
                "${ERRS[$c.$page]}"
        done
    done
    echo
    echo "Per-round req/s (in round order):"
    echo
    for page in "${PAGES[@]}"; do
        for c in "${CASES[@]}"; do echo "- ${LABEL[$c]} $page: ${RPS[$c.$page]}"; done
    done
    echo
    echo "| target | page | decoded vs plain | met |"
    echo "| --- | --- | --- | --- |"
    for page in "${PAGES[@]}"; do
        awk -v d="${M_RPS[gz.$page]}" -v p="${M_RPS[plain.$page]}" -v page="$page" 'BEGIN {
            printf "| decoded hits >= 0.5 x plain hits | %s | %.0f vs %.0f req/s (x%.2f) | %s |\n",
                page, d, p, d / p, (d >= 0.5 * p ? "yes" : "**no**") }'
    done
} | tee "$REPORT"
log "written to $REPORT"
