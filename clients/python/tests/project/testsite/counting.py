"""Counts the requests that reach Django, so tests can tell what Vanish served from cache.

``GET /__requests__`` (asked of Django directly, not through Vanish) answers the requests seen
since the last ``GET /__requests__?reset=1``, each as {"method", "path", "lang", "host"}.
"""

import threading

from django.http import JsonResponse

_lock = threading.Lock()
_seen: list = []


class CountingMiddleware:
    """First in MIDDLEWARE: records every request, and answers /__requests__ itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/__requests__":
            with _lock:
                data = list(_seen)
                if "reset" in request.GET:
                    _seen.clear()
            response = JsonResponse({"requests": data})
            response["Cache-Control"] = "no-store"
            return response
        with _lock:
            _seen.append({
                "method": request.method,
                "path": request.get_full_path(),
                "lang": request.headers.get("Accept-Language"),
                "host": request.get_host(),
            })
        return self.get_response(request)


def take() -> list:
    """(path, Accept-Language) of each request counted in this process since the last take()
    (for tests serving the project in their own process)."""
    with _lock:
        data = [(r["path"], r["lang"]) for r in _seen]
        _seen.clear()
    return data


class ServedByMiddleware:
    """First in MIDDLEWARE (settings_embedded): names the process that answered, hit or not,
    in ``X-Served-By`` (the pid)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        import os

        response = self.get_response(request)
        response["X-Served-By"] = str(os.getpid())  # after a fork: this worker's
        return response
