"""The sync and asyncio clients against the real Vanish admin API, and their retry policy
against a scripted stand-in server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Tuple

import pytest

from vanish_client import (
    AsyncVanishClient, Selector, SelectorError, VanishAPIError, VanishClient,
    VanishConnectionError, VanishTimeoutError,
)

CLIENTS = ["sync", "async"]


class Either:
    """Calls the sync client, or runs the async one to completion: one test, both clients."""

    def __init__(self, kind: str, *args, **kwargs) -> None:
        self.kind = kind
        cls = VanishClient if kind == "sync" else AsyncVanishClient
        self.client = cls(*args, **kwargs)

    def __getattr__(self, name: str):
        method = getattr(self.client, name)
        if self.kind == "sync":
            return method
        return lambda *a, **kw: asyncio.run(method(*a, **kw))


@pytest.fixture(params=CLIENTS)
def admin(request, cache) -> Either:
    return Either(request.param, cache.admin)


def test_health(admin):
    h = admin.health()
    assert h.ok and h.store == "memory" and h.capacity > 0


def test_purge_counts_matches_and_removes(admin, cache, origin):
    for lang in ("en", "fr"):
        assert cache.get("/news/a", lang).miss
    dry = admin.purge(Selector.tag("news-a"), dry_run=True)
    assert (dry.matched, dry.dry_run) == (2, True)
    assert cache.get("/news/a", "en").hit  # a dry run changes nothing
    result = admin.purge(Selector.tag("news-a"))
    assert result.matched == 2 and result.mode == "hard" and result.id
    assert cache.get("/news/a", "en").miss


def test_selector_union_in_one_purge(admin, cache):
    for path in ("/news/a", "/news/b", "/news?page=2", "/about"):
        assert cache.get(path, "en").miss
    result = admin.purge(Selector.tag("news-a"), Selector.prefix("/news/b"),
                         Selector.path("/news").query("page=2"))
    assert result.matched == 3
    assert cache.get("/about", "en").hit


def test_soft_purge_keeps_the_object_stale(admin, cache, origin, site):
    assert cache.get("/news/a", "en").miss
    assert admin.purge(Selector.tag("news-a"), mode="soft").mode == "soft"
    explained = admin.explain(f"{site}/news/a", {"Accept-Language": "en"})
    assert explained.selected.state == "stale (soft-purged)"
    origin.take()
    assert not cache.get("/news/a", "en").hit
    assert origin.take() == [("/news/a", "en")]  # revalidated with Django


def test_explain_describes_variants(admin, cache, site):
    assert not admin.explain(f"{site}/news/b").cached
    for lang in ("en", "fr"):
        cache.get("/news/b", lang)
    explained = admin.explain(f"{site}/news/b", {"Accept-Language": "fr"})
    assert explained.cached and len(explained.variants) == 2
    assert explained.selected.vary == {"accept-language": "fr"}
    assert explained.selected.state == "fresh" and explained.selected.ttl_s > 0
    assert sorted(explained.selected.tags) == ["news", "news-b"]


def test_explain_names_non_ascii_urls_as_clients_send_them(admin, cache, site):
    cache.get("/news/caf%C3%A9")
    explained = admin.explain(f"{site}/news/café")
    assert explained.cached and explained.key.endswith("/news/caf%C3%A9")


def test_varnish_style_purges(admin, cache, site):
    cache.get("/news/a", "en")
    cache.get("/news/b", "en")
    assert admin.varnish_purge(f"{site}/news/a").matched == 1
    assert admin.varnish_purge(f"{site}/nothing-here").matched == 0
    assert admin.varnish_purge_tags("news-b", "absent").matched == 1
    assert cache.get("/news/a", "en").miss and cache.get("/news/b", "en").miss


def test_ietf_draft_format(admin, cache, site):
    cache.get("/news/a", "en")
    result = admin.invalidate_raw({"type": "uri-prefix", "selectors": [f"{site}/news/"]})
    assert result.matched == 1


def test_batch_splits_into_requests(cache):
    for path in ("/news/a", "/news/b", "/news?page=2"):
        cache.get(path, "en")
    client = VanishClient(cache.admin)
    with client.batch(batch_size=2) as b:
        b.add(Selector.tag("news-a"), Selector.tag("news-b"))
        b.add(Selector.path("/news").query("page=2"), Selector.tag("news-a"))  # dup dropped
    assert b.result.requests == 2 and b.result.matched == 3


def test_async_batch(cache):
    cache.get("/news/a", "en")

    async def run():
        async with AsyncVanishClient(cache.admin).batch() as b:
            b.add(Selector.tag("news-a"), Selector.tag("news-b"))
        return b.result

    result = asyncio.run(run())
    assert result.requests == 1 and result.matched == 1


def test_bad_request_raises_with_the_servers_field(admin):
    with pytest.raises(VanishAPIError) as info:
        admin.invalidate_raw({"selectors": [{"type": "path", "path": "news"}]})
    e = info.value
    assert (e.status, e.field) == (400, "selectors[0].path")
    assert e.error == "must start with '/'" and e.body["field"] == "selectors[0].path"
    assert not e.retryable and e.attempts == 1


@pytest.mark.parametrize("kind", CLIENTS)
def test_token(kind, start_vanish):
    v = start_vanish(token="s3cret-token")
    with pytest.raises(VanishAPIError) as info:
        Either(kind, v.admin).purge(Selector.all())
    assert info.value.status == 401
    with pytest.raises(VanishAPIError):
        Either(kind, v.admin, token="wrong-token").purge(Selector.all())
    assert Either(kind, v.admin, token="s3cret-token").purge(Selector.all()).matched == 0


@pytest.mark.parametrize("kind", CLIENTS)
def test_unreachable(kind):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        client = Either(kind, f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
        with pytest.raises(VanishConnectionError) as info:
            client.purge(Selector.all())
    assert info.value.attempts == 3 and "refused" in str(info.value).lower()


# -- retries, against a scripted server -----------------------------------------------------

class Script:
    """A stand-in admin API answering a list of (status, body) in turn; records requests.

    With ``hold``, each request is held unanswered until the server is closed (at most
    ``hold`` seconds): a client's timeout, not the server, ends the attempt."""

    def __init__(self, answers: List[Tuple[int, dict]], hold: float = 0.0) -> None:
        self.answers = list(answers)
        self.hold = hold
        self.released = threading.Event()
        self.requests: List[Tuple[str, str, dict, bytes]] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                script.requests.append((self.command, self.path, dict(self.headers), body))
                if script.hold:
                    script.released.wait(script.hold)
                status, payload = script.answers.pop(0) if script.answers else (200, {})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PURGE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for_requests(self, n: int, timeout: float = 30.0) -> None:
        """Waits until the server has read ``n`` requests: one a client sent just before
        giving up may still be queued on a busy machine."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def script() -> Iterator:
    made = []

    def make(answers, hold=0.0):
        s = Script(answers, hold)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


OK = (200, {"id": "x", "matched": 4, "duration_us": 1, "mode": "hard", "dry_run": False})


@pytest.mark.parametrize("kind", CLIENTS)
def test_5xx_is_retried_with_backoff(kind, script):
    s = script([(503, {"error": "store down"}), (502, {}), OK])
    started = time.monotonic()
    result = Either(kind, s.url, retries=2, backoff=0.05).purge(Selector.tag("t"))
    assert result.matched == 4 and len(s.requests) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # two backoffs: 0.05 then 0.1
    bodies = {r[3] for r in s.requests}
    assert len(bodies) == 1  # the same purge each time


@pytest.mark.parametrize("kind", CLIENTS)
def test_5xx_after_all_retries_raises_the_last_error(kind, script):
    s = script([(503, {"error": "store down", "field": ""})] * 3)
    with pytest.raises(VanishAPIError) as info:
        Either(kind, s.url, retries=2, backoff=0.01).purge(Selector.tag("t"))
    assert info.value.status == 503 and info.value.attempts == 3
    assert info.value.error == "store down" and info.value.retryable


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_4xx_is_never_retried(kind, status, script):
    s = script([(status, {"error": "no", "field": "f"}), OK])
    with pytest.raises(VanishAPIError) as info:
        Either(kind, s.url, retries=3, backoff=0.01).purge(Selector.tag("t"))
    assert info.value.status == status and len(s.requests) == 1


@pytest.mark.parametrize("kind", CLIENTS)
def test_timeout_is_retried_then_raised(kind, script):
    # The server answers nothing for 60 s. The timeout (1 s) leaves the client ample time to
    # send each request even on a busy machine; both attempts together must end long before
    # the server would answer one.
    hold = 60.0
    s = script([OK, OK], hold=hold)
    started = time.monotonic()
    with pytest.raises(VanishTimeoutError) as info:
        Either(kind, s.url, timeout=1.0, retries=1, backoff=0.01).purge(Selector.tag("t"))
    elapsed = time.monotonic() - started
    s.wait_for_requests(2)
    assert info.value.attempts == 2 and len(s.requests) == 2
    assert elapsed < hold / 4


@pytest.mark.parametrize("kind", CLIENTS)
def test_requests_on_the_wire(kind, script):
    s = script([OK, OK, OK, (200, {"key": "k", "cached": False, "variants": []})])
    c = Either(kind, s.url + "/vanish-admin", token="s3cret-token")
    c.purge(Selector.path("/p").any_query().header("Accept-Language", "fr"), mode="soft")
    c.varnish_purge("https://Example.com:8443/a/b?x=1")
    c.varnish_purge_tags("t1", "t2", soft=True)
    c.explain("https://example.com/a?b=1", {"Accept-Language": "fr"})
    (m1, p1, h1, b1), (m2, p2, h2, _), (m3, p3, h3, _), (m4, p4, _, _) = s.requests
    assert (m1, p1) == ("POST", "/vanish-admin/invalidate")
    assert h1["Authorization"] == "Bearer s3cret-token"
    assert h1["Content-Type"] == "application/json"
    assert json.loads(b1) == {"selectors": [{"type": "path", "path": "/p", "any_query": True,
                                             "headers": {"accept-language": "fr"}}],
                              "mode": "soft"}
    assert (m2, p2, h2["Host"]) == ("PURGE", "/vanish-admin/a/b?x=1", "Example.com:8443")
    assert (m3, p3, h3["xkey-softpurge"]) == ("PURGE", "/vanish-admin/", "t1 t2")
    assert m4 == "GET" and p4 == ("/vanish-admin/explain?url=https%3A%2F%2Fexample.com%2Fa%3Fb%3D1"
                                  "&header=Accept-Language%3Afr")


def test_bad_configuration_fails_early():
    with pytest.raises(SelectorError, match="admin_url"):
        VanishClient("127.0.0.1:8081")
    with pytest.raises(SelectorError, match="credentials"):
        VanishClient("http://user:pw@127.0.0.1:8081")
    with pytest.raises(SelectorError, match="timeout"):
        AsyncVanishClient(timeout=0)
    with pytest.raises(SelectorError, match="selectors"):
        VanishClient().purge()
