"""One measurement of bench/django.sh, in its own process (Django is configured once per
process). Usage: django_bench.py MODE REDIS_URL N PAGES

Modes (each prints one JSON line):
  hit-django-locmem   Django's cache middleware pair + LocMemCache: N hits of one page
  hit-vanish-memory   vanish_client.django's pair, embedded, memory store: N hits
  hit-django-redis    Django's pair + django.core.cache.backends.redis.RedisCache: N hits
  hit-vanish-redis    vanish_client.django's pair, embedded, Redis store: N hits
  purge-vanish-redis  PAGES pages tagged "t" in the Redis store; one invalidate_tags("t")
  purge-django-redis  PAGES pages via django-redis; one delete_pattern over their keys

Requests go through Django's WSGI handler (the whole middleware chain and view), without a
server, so what differs is the cache.
"""

import io
import json
import sys
import time

MODE, REDIS_URL, N, PAGES = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

import django  # noqa: E402
from django.conf import settings  # noqa: E402

DJANGO_PAIR = ["django.middleware.cache.UpdateCacheMiddleware",
               "django.middleware.common.CommonMiddleware",
               "django.middleware.cache.FetchFromCacheMiddleware"]
VANISH_PAIR = ["vanish_client.django.UpdateCacheMiddleware",
               "django.middleware.common.CommonMiddleware",
               "vanish_client.django.FetchFromCacheMiddleware"]
caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
vanish = {}
if MODE in ("hit-vanish-memory",):
    vanish = {"MODE": "embedded", "STORE": "memory", "CAPACITY": "256MiB"}
elif MODE in ("hit-vanish-redis", "purge-vanish-redis"):
    vanish = {"MODE": "embedded", "STORE": REDIS_URL, "CAPACITY": "256MiB",
              "REDIS": {"prefix": "bench-" + MODE}}
elif MODE == "hit-django-redis":
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
elif MODE == "purge-django-redis":
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}

settings.configure(
    DEBUG=False, SECRET_KEY="bench", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    MIDDLEWARE=VANISH_PAIR if "vanish" in MODE else DJANGO_PAIR, CACHES=caches,
    INSTALLED_APPS=["vanish_client.django"] if vanish else [],
    VANISH=vanish or {"ENABLED": False}, CACHE_MIDDLEWARE_SECONDS=600, USE_TZ=True,
)
django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

BODY = "x" * 8000


def page(request, n=0):
    response = HttpResponse(BODY, content_type="text/html")
    response["Surrogate-Key"] = f"t p{n}"
    return response


urlpatterns = [path("", page), path("p/<int:n>", page)]
handler = WSGIHandler()


def request(target):
    p, _, q = target.partition("?")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": p, "QUERY_STRING": q,
               "SERVER_NAME": "bench", "SERVER_PORT": "80", "HTTP_HOST": "bench",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "SERVER_PROTOCOL": "HTTP/1.1"}
    out = {}

    def start_response(status, headers):
        out["status"] = status
        out["headers"] = dict(headers)

    body = b"".join(handler(environ, start_response))
    return out, body


def hits():
    request("/")  # fills
    out, _ = request("/")
    started = time.perf_counter()
    for _ in range(N):
        request("/")
    seconds = time.perf_counter() - started
    return {"mode": MODE, "hits": N, "us_per_hit": round(seconds / N * 1e6, 1),
            "hits_per_s": round(N / seconds),
            "second_answer": out["headers"].get("Cache-Status", "(Django's cache: no Cache-Status)")}


def purge_vanish():
    from vanish_client.django import invalidate_all, invalidate_tags

    invalidate_all()
    for n in range(PAGES):
        request(f"/p/{n}")
    started = time.perf_counter()
    result = invalidate_tags("t")
    ms = (time.perf_counter() - started) * 1e3
    return {"mode": MODE, "pages": PAGES, "matched": result.matched, "purge_ms": round(ms, 2)}


def purge_django_redis():
    from django.core.cache import cache

    cache.clear()
    for n in range(PAGES):
        request(f"/p/{n}")
    started = time.perf_counter()
    deleted = cache.delete_pattern("views.decorators.cache.cache_*")
    ms = (time.perf_counter() - started) * 1e3
    return {"mode": MODE, "pages": PAGES, "deleted_keys": deleted, "purge_ms": round(ms, 2)}


result = {"purge-vanish-redis": purge_vanish, "purge-django-redis": purge_django_redis}.get(
    MODE, hits)()
print(json.dumps(result))
