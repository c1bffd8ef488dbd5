#!/usr/bin/env bash
# The disk tier (issue 20): 64 KiB disk hits vs nginx proxy_cache, restart time with many
# objects on disk, and purge costs on disk vs the memory store.
#
# One nginx origin answers every path with a 64 KiB page (`/p/*`), a 1 KiB page (`/s/*`) or
# a 1 KiB page tagged `big` (`/t/*`, `Surrogate-Key: big`), all `Cache-Control: public,
# max-age=3600`. Three phases, each printed as a markdown table (also in bench/out/):
# 1. Hits: Vanish with a disk tier (memory tier MEMORY, working set PAGES x 64 KiB, so
#    PAGES*64KiB/MEMORY times the memory tier) and nginx proxy_cache (disk cache), both warmed
#    with every page, then wrk over random pages, each pinned to its CPU; ROUNDS rounds, medians.
# 2. Restart: RESTART_OBJECTS 1 KiB objects written to disk, SIGTERM, restart; the time from
#    start to the "index rebuilt" log line, and the rebuild time the tier reports.
# 3. Purges: TAG_OBJECTS objects tagged `big` in Vanish with and without a disk tier; the
#    `duration_us` of a purge of one URL, of the tag, and of the prefix `/t/`.
#
# Usage: bench/disk.sh   (env: PAGES=4096 MEMORY=64MiB DURATION=10s CONNS=64 ROUNDS=3
#        RESTART_OBJECTS=1000000 TAG_OBJECTS=10000; VANISH=path skips the release build)
# Smoke run: PAGES=50 RESTART_OBJECTS=300 TAG_OBJECTS=200 DURATION=2s ROUNDS=1 bench/disk.sh
# Needs: Debian/Ubuntu (missing packages are installed with apt-get), 2+ CPUs, cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PAGES=${PAGES:-4096}
MEMORY=${MEMORY:-64MiB}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
RESTART_OBJECTS=${RESTART_OBJECTS:-1000000}
TAG_OBJECTS=${TAG_OBJECTS:-10000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}

BENCH_NAME=disk.sh
. "$ROOT/bench/lib.sh"

need_tools nginx:nginx wrk:wrk curl:curl taskset:util-linux
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (one for the proxies, one for wrk)"
if [ -z "${VANISH:-}" ]; then build_vanish; fi
bench_workdir vanish-disk-bench
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/disk-$(date +%Y%m%d-%H%M%S).md"

free_port ORIGIN_PORT; free_port NGINX_PORT
USER_LINE=""
[ "$(id -u)" -eq 0 ] && USER_LINE="user root;"
nginx_conf() { # prefix, then the http block's servers on stdin
    cat <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy_temp;
    fastcgi_temp_path $1/fastcgi_temp;
    uwsgi_temp_path $1/uwsgi_temp;
    scgi_temp_path $1/scgi_temp;
    default_type text/html;
$(cat)
}
EOF
}

# ---- origin.
mkdir -p "$WORK/origin/www"
head -c 65536 /dev/zero | tr '\0' 'b' >"$WORK/origin/www/64k.html"
head -c 1024 /dev/zero | tr '\0' 'a' >"$WORK/origin/www/1k.html"
nginx_conf "$WORK/origin" >"$WORK/origin/nginx.conf" <<EOF
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WORK/origin/www;
        add_header Cache-Control "public, max-age=3600";
        location /p/ { try_files /64k.html =404; }
        location /s/ { try_files /1k.html =404; }
        location /t/ { add_header Surrogate-Key big; add_header Cache-Control "public, max-age=3600"; try_files /1k.html =404; }
    }
EOF
taskset -c "$LOAD_CPU" nginx -p "$WORK/origin" -c "$WORK/origin/nginx.conf" >"$WORK/origin/out.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT" "origin nginx"

# ---- nginx proxy_cache on disk.
mkdir -p "$WORK/nginx/cache"
nginx_conf "$WORK/nginx" >"$WORK/nginx/nginx.conf" <<EOF
    proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=bench:64m max_size=8g inactive=60m use_temp_path=off;
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
EOF
taskset -c "$PROXY_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/out.log" 2>&1 &
PIDS+=($!)
wait_port "$NGINX_PORT" "nginx proxy_cache"

# ---- Vanish: start_vanish NAME [--disk-path DIR ...]; sets PORT_<NAME>, ADMIN_<NAME>, PID_<NAME>.
start_vanish() {
    local name=$1; shift
    local port admin
    free_port port; free_port admin
    printf '[disk]\nadmit = "first"\n' >"$WORK/$name.toml"
    local cfg=()
    [[ " $* " == *" --disk-path "* ]] && cfg=(--config "$WORK/$name.toml")
    RUST_LOG=info taskset -c "$PROXY_CPU" "$VANISH" serve --upstream "http://127.0.0.1:$ORIGIN_PORT" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --memory-capacity "$MEMORY" \
        "${cfg[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    printf -v "PID_$name" '%s' "$!"
    printf -v "PORT_$name" '%s' "$port"
    printf -v "ADMIN_$name" '%s' "$admin"
    wait_port "$port" "vanish ($name)"
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
wait_metric_at_least() { # admin metric value
    for _ in $(seq 1 600); do
        local v; v=$(metric "$1" "$2")
        awk -v v="${v:-0}" -v w="$3" 'BEGIN { exit !(v >= w) }' && return 0
        sleep 0.5
    done
    die "$2 did not reach $3 (at $(metric "$1" "$2"))"
}
warm() { # port prefix count
    seq 0 $(($3 - 1)) | sed "s|^|http://127.0.0.1:$1$2|" | xargs -P 8 -I{} curl -s -o /dev/null {}
}
cat >"$WORK/random.lua" <<EOF
math.randomseed(os.time())
request = function() return wrk.format("GET", "/p/" .. math.random(0, $PAGES - 1)) end
EOF
rps() { # port -> requests/s
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" -s "$WORK/random.lua" "http://127.0.0.1:$1" \
        | awk '/Requests\/sec/ { print $2 }'
}

log "phase 1: $PAGES pages of 64 KiB, memory tier $MEMORY"
start_vanish disk --disk-path "$WORK/vdisk" --disk-capacity 16GiB
warm "$PORT_disk" /p/ "$PAGES"
wait_metric_at_least "$ADMIN_disk" vanish_disk_objects "$PAGES"
warm "$NGINX_PORT" /p/ "$PAGES"
curl -s -D - -o /dev/null "http://127.0.0.1:$NGINX_PORT/p/0" | grep -qi '^x-cache-status: *HIT' || die "nginx does not hit"
declare -a V=() N=()
for r in $(seq 1 "$ROUNDS"); do
    V+=("$(rps "$PORT_disk")"); N+=("$(rps "$NGINX_PORT")")
    log "round $r: vanish ${V[-1]} req/s, nginx ${N[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
MV=$(median "${V[@]}"); MN=$(median "${N[@]}")
DISK_HITS=$(metric "$ADMIN_disk" vanish_disk_hits_total); DISK_HITS=${DISK_HITS:-0}
kill "$PID_disk"; wait "$PID_disk" 2>/dev/null || true

log "phase 2: restart with $RESTART_OBJECTS objects"
start_vanish restart --disk-path "$WORK/rdisk" --disk-capacity 64GiB
cat >"$WORK/seq.lua" <<EOF
local i = -1
request = function() i = i + 1; return wrk.format("GET", "/s/" .. i) end
EOF
while [ "$(metric "$ADMIN_restart" vanish_disk_objects | cut -d. -f1)" -lt "$RESTART_OBJECTS" ] 2>/dev/null; do
    taskset -c "$LOAD_CPU" wrk -t1 -c1 -d5s -s "$WORK/seq.lua" "http://127.0.0.1:$PORT_restart" >/dev/null
done
ON_DISK=$(metric "$ADMIN_restart" vanish_disk_objects)
kill "$PID_restart"; wait "$PID_restart" 2>/dev/null || true
T0=$(date +%s.%N)
start_vanish restart --disk-path "$WORK/rdisk" --disk-capacity 64GiB
for _ in $(seq 1 1200); do grep -q "index rebuilt" "$WORK/restart.log" && break; sleep 0.05; done
T1=$(date +%s.%N)
REBUILD=$(metric "$ADMIN_restart" vanish_disk_rebuild_seconds)
kill "$PID_restart"; wait "$PID_restart" 2>/dev/null || true

log "phase 3: purge costs with $TAG_OBJECTS tagged objects"
purge_us() { # admin json
    curl -s -X POST "http://127.0.0.1:$1/invalidate" -H 'content-type: application/json' -d "$2" \
        | sed 's/.*"duration_us":\([0-9]*\).*/\1/'
}
declare -A COST
for kind in memory disk; do
    if [ "$kind" = disk ]; then start_vanish p$kind --disk-path "$WORK/pdisk" --disk-capacity 16GiB
    else start_vanish p$kind; fi
    a=ADMIN_p$kind; p=PORT_p$kind
    for what in url tag prefix; do
        warm "${!p}" /t/ "$TAG_OBJECTS"
        [ "$kind" = disk ] && wait_metric_at_least "${!a}" vanish_disk_objects "$TAG_OBJECTS"
        case $what in
            url) json="{\"type\":\"url\",\"url\":\"http://127.0.0.1:${!p}/t/1\"}" ;;
            tag) json='{"type":"tag","tag":"big"}' ;;
            prefix) json='{"type":"prefix","prefix":"/t/"}' ;;
        esac
        COST[$kind.$what]=$(purge_us "${!a}" "$json")
    done
    pid=PID_p$kind; kill "${!pid}"; wait "${!pid}" 2>/dev/null || true
done

{
    echo "## Disk tier ($(date -u +%Y-%m-%d), $(nproc) CPUs, Vanish $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
    echo
    echo "| measure | Vanish (disk tier) | nginx proxy_cache |"
    echo "|---|---|---|"
    echo "| 64 KiB hits, $PAGES pages, memory tier $MEMORY (req/s, median of $ROUNDS) | $MV | $MN |"
    echo "| disk hits counted during the runs | $DISK_HITS | |"
    echo
    echo "| restart | value |"
    echo "|---|---|"
    echo "| objects on disk | $ON_DISK |"
    echo "| start to index rebuilt (s) | $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }') |"
    echo "| rebuild reported (s) | $REBUILD |"
    echo
    echo "| purge ($TAG_OBJECTS tagged) | memory store (µs) | memory + disk (µs) |"
    echo "|---|---|---|"
    for what in url tag prefix; do
        echo "| $what | ${COST[memory.$what]} | ${COST[disk.$what]} |"
    done
} | tee "$OUT"
log "written to $OUT"
