#!/usr/bin/env bash
# Purge costs (issue 3): Vanish's memory store and index, next to Redis pattern deletes and
# Varnish xkey purges / bans, in one run.
#
# 1. `cargo bench -p vanish-memory --bench purge` (crates/memory/benches/purge.rs):
#    1,000,000 objects; URL, tag and prefix purges, hit latency after purges, index memory.
# 2. Redis (f): a redis-server on a free loopback port (`--save '' --appendonly no`), 1,000,000
#    Django-style keys loaded with `redis-cli --pipe`, one URL's keys deleted with
#    `KEYS pattern` + DEL and with `SCAN MATCH` + DEL (bench/redis_purge.py).
# 3. Varnish (g): varnishd with varnish-modules' xkey, filled through an nginx origin that
#    sets `xkey` headers (10,000 objects share the key `bulk`, 40,000 others have their own);
#    a `PURGE` with `xkey-purge: bulk` (xkey.purge) and a ban of the same objects are timed.
#
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
# Usage: bench/purge.sh      (env: SKIP_RUST=1, SKIP_REDIS=1, SKIP_VARNISH=1, REDIS_URLS=500000,
#                             XKEY_OBJECTS=10000, XKEY_FILLER=40000)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
REDIS_URLS=${REDIS_URLS:-500000}
XKEY_OBJECTS=${XKEY_OBJECTS:-10000}
XKEY_FILLER=${XKEY_FILLER:-40000}

BENCH_NAME=purge.sh
. "$ROOT/bench/lib.sh"

need=()
if [ -z "${SKIP_REDIS:-}" ]; then
    command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
    command -v python3 >/dev/null 2>&1 || need+=(python3)
fi
if [ -z "${SKIP_VARNISH:-}" ]; then
    command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] || need+=(varnish)
    ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1 || need+=(varnish-modules)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
    command -v curl >/dev/null 2>&1 || need+=(curl)
fi
install_missing "${need[@]}"
export PATH="$PATH:/usr/sbin:/sbin"

bench_workdir vanish-purge-bench

mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/purge-$(date -u +%Y%m%dT%H%M%SZ).md"
exec > >(tee "$REPORT")

echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(date -u '+%Y-%m-%d %H:%M UTC'); Vanish ${VANISH_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}."
echo

# ---------------------------------------------------------------------------------------------
if [ -z "${SKIP_RUST:-}" ]; then
    log "Vanish memory store: cargo bench -p vanish-memory --bench purge"
    echo "### Vanish memory store (cargo bench -p vanish-memory --bench purge)"
    echo
    (cd "$ROOT" && cargo bench -q -p vanish-memory --bench purge 2> >(grep -v '^\s*\(Compiling\|Finished\|Running\)' >&2))
    echo
fi

# ---------------------------------------------------------------------------------------------
if [ -z "${SKIP_REDIS:-}" ]; then
    log "Redis: $((REDIS_URLS * 2)) Django-style keys"
    echo "### Redis $(redis-server --version | awk '{print $3}' | sed 's/v=//'): Django-style pattern deletes"
    echo
    free_port REDIS_PORT
    mkdir -p "$WORK/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$WORK/redis" --daemonize no --protected-mode yes >"$WORK/redis/log" 2>&1 &
    PIDS+=($!)
    wait_port "$REDIS_PORT" "redis-server"
    timeout 600 python3 "$ROOT/bench/redis_purge.py" "$REDIS_PORT" "$REDIS_URLS"
    echo
fi

# ---------------------------------------------------------------------------------------------
if [ -z "${SKIP_VARNISH:-}" ]; then
    log "Varnish xkey: $XKEY_OBJECTS objects sharing a key, $XKEY_FILLER others"
    echo "### Varnish $(varnishd -V 2>&1 | head -1 | sed 's/.*varnish-\([0-9.]*\).*/\1/') with xkey (varnish-modules)"
    echo
    free_port ORIGIN_PORT
    free_port VARNISH_PORT
    mkdir -p "$WORK/origin"
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
    keepalive_requests 10000000;
    client_body_temp_path $WORK/origin/cb;
    proxy_temp_path $WORK/origin/pt;
    fastcgi_temp_path $WORK/origin/ft;
    uwsgi_temp_path $WORK/origin/ut;
    scgi_temp_path $WORK/origin/st;
    default_type text/plain;
    map \$uri \$xk {
        ~^/x/bulk/(?<n>[0-9]+)\$ "bulk p\$n";
        ~^/x/f/(?<n>[0-9]+)\$ "f\$n";
        default "";
    }
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        location /x/ {
            add_header Cache-Control "public, max-age=3600";
            add_header xkey \$xk;
            return 200 "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";
        }
    }
}
EOF
    nginx -p "$WORK/origin" -e "$WORK/origin/error.log" -c "$WORK/origin/nginx.conf" >"$WORK/origin/out.log" 2>&1 &
    PIDS+=($!)
    wait_port "$ORIGIN_PORT" "origin nginx"

    mkdir -p "$WORK/varnish"
    cat >"$WORK/varnish/bench.vcl" <<EOF
vcl 4.1;
import xkey;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN_PORT"; }
# Benchmark VCL: PURGE and BAN are accepted from anyone (it listens on loopback only).
sub vcl_recv {
    if (req.method == "PURGE") {
        if (req.http.xkey-purge) {
            set req.http.n-gone = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        ban("obj.http.xkey ~ " + req.http.x-ban);
        return (synth(200, "Banned"));
    }
}
EOF
    varnishd -F -j none -n "$WORK/varnish/n" -a "127.0.0.1:$VARNISH_PORT" -T "127.0.0.1:0" \
        -f "$WORK/varnish/bench.vcl" -s malloc,512m -p ban_lurker_age=0 \
        >"$WORK/varnish/out.log" 2>&1 &
    PIDS+=($!)
    wait_port "$VARNISH_PORT" "varnishd"
    V="http://127.0.0.1:$VARNISH_PORT"
    n_object() { varnishstat -n "$WORK/varnish/n" -1 -f MAIN.n_object | awk '{print $2}'; }
    fill() { # what count
        curl -s -o /dev/null "$V/x/$1/[1-$2]"
    }
    t0=$(date +%s.%N)
    fill f "$XKEY_FILLER"
    fill bulk "$XKEY_OBJECTS"
    t1=$(date +%s.%N)
    total=$(n_object)
    [ -n "$total" ] || die "varnishstat gave no MAIN.n_object"
    [ "$total" -ge $((XKEY_OBJECTS + XKEY_FILLER)) ] || die "varnish holds $total objects, expected $((XKEY_OBJECTS + XKEY_FILLER))"
    hdr=$(curl -s -D - -o /dev/null "$V/x/bulk/1" | tr -d '\r' | grep -i '^x-varnish:')
    echo "$hdr" | grep -Eq '[0-9]+ +[0-9]+' || die "varnish did not hit after the fill ($hdr)"
    echo "Varnish holds $total objects (filled through the origin in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s with curl, one connection)."
    echo
    echo "| Varnish operation on $XKEY_OBJECTS objects sharing a key | run 1 | run 2 | run 3 |"
    echo "| --- | ---: | ---: | ---: |"
    xk_row="| \`PURGE\` with \`xkey-purge: bulk\` (xkey.purge, hard), request time |"
    ban_row="| \`BAN\` of \`obj.http.xkey ~ bulk\` (lazy: objects are tested on lookup or by the ban lurker), request time |"
    lurk_row="| same ban: until the ban lurker has removed all $XKEY_OBJECTS (polled every 10 ms) |"
    for run in 1 2 3; do
        [ "$run" -eq 1 ] || fill bulk "$XKEY_OBJECTS"
        out=$(curl -s -X PURGE -H 'xkey-purge: bulk' -w ' %{time_total}' "$V/")
        gone=$(grep -o 'Invalidated [0-9]*' <<<"$out" | head -1 | awk '{print $2}')
        secs=${out##* }
        [ "$gone" = "$XKEY_OBJECTS" ] || die "xkey.purge invalidated '$gone' objects, expected $XKEY_OBJECTS ($out)"
        xk_row+=" $(awk -v s="$secs" 'BEGIN{printf "%.2f ms", s * 1000}') |"
        # Refill, then ban the same objects.
        fill bulk "$XKEY_OBJECTS"
        before=$(n_object)
        start=$(date +%s%N)
        secs=$(curl -s -o /dev/null -X BAN -H 'x-ban: bulk' -w '%{time_total}' "$V/")
        ban_row+=" $(awk -v s="$secs" 'BEGIN{printf "%.2f ms", s * 1000}') |"
        done_ms=""
        for _ in $(seq 1 3000); do
            now_n=$(n_object)
            if [ "$now_n" -le $((before - XKEY_OBJECTS)) ]; then
                done_ms=$((($(date +%s%N) - start) / 1000000))
                break
            fi
            sleep 0.01
        done
        if [ -n "$done_ms" ]; then lurk_row+=" $done_ms ms |"; else lurk_row+=" not within 30 s |"; fi
        log "run $run done"
    done
    echo "$xk_row"
    echo "$ban_row"
    echo "$lurk_row"
    echo
fi
log "written to $REPORT"
