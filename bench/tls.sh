#!/usr/bin/env bash
# TLS hit throughput (issue 13): Vanish's TLS listener vs nginx proxy_cache behind `ssl`,
# the same certificate, side by side.
#
# One nginx origin serves a 1 KiB page (`Cache-Control: public, max-age=3600`) over plain
# HTTP. In front of it run Vanish (`--listen-tls`) and nginx (`listen ... ssl`, HTTP/2 on),
# both pinned to CPU 0 (`taskset -c 0`) and given one self-signed ECDSA P-256 certificate made
# here with openssl; the load generators run pinned to CPU 1. Each cache is warmed and
# checked to answer a hit over HTTP/1.1 and HTTP/2, then every (proxy, protocol) pair is
# measured ROUNDS times, the proxy order rotating between rounds:
#   - HTTP/1.1 keep-alive: `wrk -t1 -cCONNS` (one TLS handshake per connection);
#   - HTTP/2: `h2load -t1 -cH2_CONNS -mH2_STREAMS` (streams per connection at once).
# The medians and the ratio Vanish / nginx are printed as a markdown table (also written to
# bench/out/). Everything listens on 127.0.0.1 only; every process started here is stopped
# on exit.
#
# Usage: bench/tls.sh   (env: DURATION=10 (seconds) CONNS=64 H2_CONNS=8 H2_STREAMS=16
#                        ROUNDS=3 WARMUP=2)
# Needs: Debian/Ubuntu (missing packages are installed with apt-get: nginx, wrk,
# nghttp2-client for h2load, openssl, curl), 2+ CPUs, cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
H2_CONNS=${H2_CONNS:-8}
H2_STREAMS=${H2_STREAMS:-16}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}

BENCH_NAME=tls.sh
. "$ROOT/bench/lib.sh"

case "$DURATION$WARMUP" in *[!0-9]*) die "DURATION and WARMUP are whole seconds" ;; esac

# ---------------------------------------------------------------------------------------------
# Tools.
need_tools nginx:nginx wrk:wrk h2load:nghttp2-client openssl:openssl curl:curl taskset:util-linux
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (one for the proxies, one for the load)"
build_vanish

# ---------------------------------------------------------------------------------------------
# Processes and cleanup.
bench_workdir vanish-tls-bench

free_port ORIGIN_PORT
free_port VANISH_PORT
free_port VANISH_TLS_PORT
free_port VANISH_ADMIN_PORT
free_port NGINX_PORT

# ---- The certificate both proxies serve.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
log "certificate: $(openssl x509 -in "$WORK/cert.pem" -noout -subject -ext subjectAltName | tr '\n' ' ')"

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

# ---- origin: nginx serving the page over plain HTTP.
mkdir -p "$WORK/origin/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$WORK/origin/www/1k.html"
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
taskset -c "$LOAD_CPU" nginx -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" \
    >"$WORK/origin/stdout.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT" "origin nginx"

# ---- Vanish with its TLS listener.
mkdir -p "$WORK/vanish"
RUST_LOG=warn taskset -c "$PROXY_CPU" "$VANISH" serve \
    --upstream "http://127.0.0.1:$ORIGIN_PORT" \
    --listen "127.0.0.1:$VANISH_PORT" \
    --listen-tls "127.0.0.1:$VANISH_TLS_PORT" \
    --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
    --admin-listen "127.0.0.1:$VANISH_ADMIN_PORT" \
    >"$WORK/vanish/stdout.log" 2>"$WORK/vanish/stderr.log" &
PIDS+=($!)
wait_port "$VANISH_TLS_PORT" "vanish (TLS)"

# ---- nginx proxy_cache behind ssl, HTTP/2 on (`http2 on;` from nginx 1.25.1, before that a
# parameter of `listen`).
NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*nginx\///;s/ .*//')
if printf '%s\n' 1.25.1 "$NGINX_VERSION" | sort -V -C; then
    LISTEN_H2="" H2_LINE="http2 on;"
else
    LISTEN_H2=" http2" H2_LINE=""
fi
mkdir -p "$WORK/nginx/cache"
{
    nginx_common "$WORK/nginx"
    echo "http {"
    nginx_http_common "$WORK/nginx"
    cat <<EOF
    proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=bench:16m max_size=1g inactive=60m use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 16; }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl$LISTEN_H2;
        $H2_LINE
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
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
wait_port "$NGINX_PORT" "nginx proxy_cache (ssl)"

# ---------------------------------------------------------------------------------------------
# Warm and verify: a hit over each protocol, the certificate given, the right size.
declare -A PORT=([vanish]=$VANISH_TLS_PORT [nginx]=$NGINX_PORT)
declare -A LABEL=([vanish]="Vanish" [nginx]="nginx proxy_cache")
PROXIES=(vanish nginx)
PROTOCOLS=(h1 h2)
declare -A CURL_FLAG=([h1]=--http1.1 [h2]=--http2)

is_hit() { # proxy headers-file
    case "$1" in
    vanish) grep -qi '^cache-status: *vanish; *hit' "$2" ;;
    nginx) grep -qi '^x-cache-status: *HIT' "$2" ;;
    esac
}

for p in "${PROXIES[@]}"; do
    url="https://localhost:${PORT[$p]}/1k.html"
    for proto in "${PROTOCOLS[@]}"; do
        curl_args=(-s --cacert "$WORK/cert.pem" --resolve "localhost:${PORT[$p]}:127.0.0.1" "${CURL_FLAG[$proto]}")
        for _ in 1 2 3; do curl "${curl_args[@]}" -o /dev/null "$url"; done
        out=$(curl "${curl_args[@]}" -D "$WORK/h.txt" -o "$WORK/body" -w '%{size_download} %{http_version}' "$url")
        tr -d '\r' <"$WORK/h.txt" >"$WORK/h2.txt"
        read -r size version <<<"$out"
        [ "$size" = 1024 ] || die "$p $proto: got $size bytes, expected 1024"
        case "$proto.$version" in h1.1.1 | h2.2) ;; *) die "$p $proto: curl spoke HTTP/$version" ;; esac
        is_hit "$p" "$WORK/h2.txt" || {
            cat "$WORK/h2.txt" >&2
            die "$p $proto: the warmed response is not a hit"
        }
        log "$p $proto: HTTP/$version hit ($(grep -Ei '^(cache-status|x-cache-status):' "$WORK/h2.txt" | tr '\n' ' '))"
    done
done

# ---------------------------------------------------------------------------------------------
# Measure.
run_h1() { # proxy seconds -> "rps errors"
    local out rps errs
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$2s" "https://127.0.0.1:${PORT[$1]}/1k.html")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(",", "", v); n += v } }
        END {print n + 0}' <<<"$out")
    echo "${rps:-0} $errs"
}

run_h2() { # proxy seconds -> "rps errors"
    local out rps errs
    out=$(taskset -c "$LOAD_CPU" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D"$2" \
        "https://127.0.0.1:${PORT[$1]}/1k.html" 2>&1) || true
    grep -q 'Application protocol: h2' <<<"$out" || {
        echo "$out" >&2
        die "$1: h2load did not negotiate h2"
    }
    rps=$(awk '/^finished in/ {for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i - 1)}' <<<"$out")
    errs=$(awk '/^requests:/ {print $(NF - 5) + $(NF - 3) + 0}' <<<"$out")
    echo "${rps:-0} ${errs:-0}"
}

run() { # proxy protocol seconds
    case "$2" in
    h1) run_h1 "$1" "$3" ;;
    h2) run_h2 "$1" "$3" ;;
    esac
}

log "warm-up runs (${WARMUP}s each)"
for p in "${PROXIES[@]}"; do
    for proto in "${PROTOCOLS[@]}"; do run "$p" "$proto" "$WARMUP" >/dev/null; done
done

declare -A RPS ERRS
for round in $(seq 1 "$ROUNDS"); do
    # Rotate the order so no proxy always runs first or last.
    shift_by=$(((round - 1) % ${#PROXIES[@]}))
    order=("${PROXIES[@]:$shift_by}" "${PROXIES[@]:0:$shift_by}")
    for proto in "${PROTOCOLS[@]}"; do
        for p in "${order[@]}"; do
            read -r rps errs < <(run "$p" "$proto" "$DURATION")
            log "round $round $p $proto: $rps req/s, errors $errs"
            RPS[$p.$proto]+="$rps "
            ERRS[$p.$proto]=$((${ERRS[$p.$proto]:-0} + errs))
        done
    done
done

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{a[NR] = $1} END {
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------------------------
# Report.
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/tls-$(date -u +%Y%m%dT%H%M%SZ).md"
declare -A M_RPS
declare -A PROTO_LABEL=([h1]="HTTP/1.1 keep-alive (wrk -t1 -c$CONNS)" [h2]="HTTP/2 (h2load -t1 -c$H2_CONNS -m$H2_STREAMS)")
{
    echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Vanish ${VANISH_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}, nginx $NGINX_VERSION ($(openssl version | awk '{print $1, $2}')), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $(h2load --version 2>&1 | head -1)."
    echo "1 KiB hits over TLS (ECDSA P-256, the same certificate); proxies pinned to CPU $PROXY_CPU, load to CPU $LOAD_CPU; ${DURATION}s runs, medians of $ROUNDS rounds."
    echo
    echo "| protocol | Vanish req/s | nginx req/s | Vanish / nginx | errors (Vanish, nginx) |"
    echo "| --- | ---: | ---: | ---: | --- |"
    for proto in "${PROTOCOLS[@]}"; do
        for p in "${PROXIES[@]}"; do M_RPS[$p.$proto]=$(median <<<"${RPS[$p.$proto]}"); done
        awk -v v="${M_RPS[vanish.$proto]}" -v n="${M_RPS[nginx.$proto]}" -v l="${PROTO_LABEL[$proto]}" \
            -v ev="${ERRS[vanish.$proto]}" -v en="${ERRS[nginx.$proto]}" \
            'BEGIN { printf "| %s | %.0f | %.0f | x%.2f | %s, %s |\n", l, v, n, (n > 0 ? v / n : 0), ev, en }'
    done
    echo
    echo "Per-round req/s (in round order):"
    echo
    for proto in "${PROTOCOLS[@]}"; do
        for p in "${PROXIES[@]}"; do echo "- ${LABEL[$p]} $proto: ${RPS[$p.$proto]}"; done
    done
    echo
    echo "| target | measured | met |"
    echo "| --- | --- | --- |"
    for proto in "${PROTOCOLS[@]}"; do
        awk -v v="${M_RPS[vanish.$proto]}" -v n="${M_RPS[nginx.$proto]}" -v l="${PROTO_LABEL[$proto]}" \
            'BEGIN { printf "| Vanish >= nginx, %s | x%.2f | %s |\n", l, (n > 0 ? v / n : 0), (v >= n ? "yes" : "**no**") }'
    done
} | tee "$REPORT"
log "written to $REPORT"
