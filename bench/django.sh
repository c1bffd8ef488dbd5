#!/usr/bin/env bash
# Django page caching: Vanish's embedded mode against Django's own cache_page middleware,
# same machine, same run, through Django's WSGI handler (no server):
#   - a hit: embedded (memory store) vs Django's pair + LocMemCache;
#            embedded (Redis store)  vs Django's pair + RedisCache (django.core);
#   - purging one tag of PAGES pages (default 10,000): embedded Redis store vs django-redis
#     delete_pattern over the same pages' keys (KEYS/SCAN + DEL).
# Targets (issue 16): a memory hit at least 2x faster than LocMemCache's; a Redis hit at least
# as fast as RedisCache's; the tag purge under 50 ms.
#
# Usage: bench/django.sh                 (N=20000 hits, PAGES=10000)
#        N=200 PAGES=200 bench/django.sh (a smoke run)
# Env: VANISH_WHEEL (else scripts/wheel.sh builds it), PYTHON (3.11+).
# Results: one JSON line per measurement on stdout.
set -euo pipefail
BENCH_NAME=django
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/bench/lib.sh"
N="${N:-20000}"
PAGES="${PAGES:-10000}"
PYTHON="${PYTHON:-python3}"

need_tools redis-server:redis-server
bench_workdir vanish-bench-django
WHEEL="${VANISH_WHEEL:-}"
if [ -z "$WHEEL" ]; then
  log "building the wheel (scripts/wheel.sh)"
  WHEEL="$("$ROOT/scripts/wheel.sh" | tail -1)"
fi
log "virtualenv with the wheel, Django, redis-py, django-redis"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check \
  -c "$ROOT/clients/python/requirements-test.txt" "$WHEEL" Django redis django-redis

free_port REDIS_PORT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

for mode in hit-django-locmem hit-vanish-memory hit-django-redis hit-vanish-redis \
            purge-vanish-redis purge-django-redis; do
  log "$mode"
  (cd "$WORK" && "$WORK/venv/bin/python" "$ROOT/bench/django_bench.py" "$mode" "$REDIS_URL" \
     "$N" "$PAGES")
done
