"""Embedded mode beyond the four asks: the cache_page drop-in (tags, key_prefix, async views),
streamed responses, ASGI, fork() after first use, and Redis going away."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.test import AsyncClient, Client
from django.test.utils import override_settings

from harness import PROJECT, RedisServer, unique_log
from test_embedded_asks import SITE, embedded_settings
from vanish_client import EmbeddedCacheError
from vanish_client.django import embedded, invalidate_all, invalidate_path, invalidate_tags

pytestmark = pytest.mark.embedded
HOST = SITE.split("://", 1)[1]


@pytest.fixture(params=["memory", "redis"])
def store(request) -> str:
    if request.param == "memory":
        return "memory"
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def decorated(store, migrated):
    """Embedded mode with the project's usual middleware: only decorated views cache."""
    with override_settings(VANISH=embedded_settings(store)):
        invalidate_all()
        yield Client(HTTP_HOST=HOST)


def status(res) -> str:
    return res.get("Cache-Status", "")


def test_cache_page_drop_in_with_tags(decorated):
    first = decorated.get("/cp/1")
    assert "fwd=miss" in status(first) and "stored" in status(first)
    assert first["Cache-Control"] == "max-age=60"  # as Django's cache_page patches it
    assert "Expires" in first
    assert "Vanish-Cache-Control" not in first and "Surrogate-Key" not in first
    again = decorated.get("/cp/1")
    assert "hit" in status(again) and again.content == first.content
    decorated.get("/cp/2")
    assert invalidate_tags("cp-1").matched == 1
    assert "fwd=miss" in status(decorated.get("/cp/1"))
    assert "hit" in status(decorated.get("/cp/2"))
    assert invalidate_tags("cp").matched == 2


def test_key_prefix_keeps_pages_apart_and_purges_match_them_all(decorated):
    a = decorated.get("/cp-other/1")
    assert "fwd=miss" in status(a)
    assert "hit" in status(decorated.get("/cp-other/1"))
    assert invalidate_path("/cp-other/1").matched == 1
    assert "fwd=miss" in status(decorated.get("/cp-other/1"))


def test_streamed_responses_pass_uncached(decorated):
    before = embedded.stats["uncached"]
    bodies = [b"".join(decorated.get("/streamed").streaming_content) for _ in range(2)]
    assert bodies[0] != bodies[1], "rendered twice"
    assert embedded.stats["uncached"] == before + 2


def test_asgi_async_view_and_async_middleware(store, migrated):
    """Django's ASGI handler (AsyncClient), an async view, and the middleware pair running
    its async path."""
    import asyncio

    async def run():
        client = AsyncClient(HTTP_HOST=HOST)
        first = await client.get("/cp-async")
        second = await client.get("/cp-async")
        page = [await client.get("/news/a", headers={"Accept-Language": "fr"}) for _ in "ab"]
        return first, second, page

    with override_settings(VANISH=embedded_settings(store),
                           MIDDLEWARE=settings.EMBEDDED_MIDDLEWARE):
        invalidate_all()
        first, second, page = asyncio.run(run())
    assert "fwd=miss" in status(first) and "hit" in status(second)
    assert second.content == first.content
    assert "fwd=miss" in status(page[0]) and "hit" in status(page[1])


def test_a_cache_down_never_fails_a_request(scratch, migrated, caplog):
    """Redis stopped: pages still render (and the L1 may serve what it holds), with the
    outage logged and counted; purges fail, logged, raised only with RAISE_ERRORS."""
    server = RedisServer.start(unique_log(scratch, "redis-down"))
    conf = embedded_settings(server.url, RAISE_ERRORS=False,
                             REDIS={"timeout": "500ms", "prefix": "down-test"})
    try:
        with override_settings(VANISH=conf, MIDDLEWARE=settings.EMBEDDED_MIDDLEWARE):
            client = Client(HTTP_HOST=HOST)
            client.get("/news/a")
            assert "hit" in status(client.get("/news/a"))
            server.stop()
            errors = embedded.stats["errors"]
            with caplog.at_level(logging.WARNING, logger="vanish_client"):
                for i in range(3):
                    res = client.get(f"/news/b?i={i}")
                    assert res.status_code == 200 and b"news item b" in res.content
                    assert "fwd=miss" in status(res)
                assert client.get("/news/a").status_code == 200
                assert invalidate_tags("news") is None  # logged, not raised
            assert embedded.stats["errors"] > errors
            assert any("failed" in r.getMessage() for r in caplog.records)
        with override_settings(VANISH={**conf, "RAISE_ERRORS": True}):
            with pytest.raises(EmbeddedCacheError):
                invalidate_tags("news")
    finally:
        server.stop()


FORK_SCRIPT = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, {project!r})
    os.environ["DJANGO_SETTINGS_MODULE"] = "testsite.settings"
    import django
    from django.conf import settings
    django.setup()
    from django.test import Client
    from django.test.utils import override_settings
    from vanish_client.django import invalidate_all, invalidate_tags

    conf = json.loads(sys.argv[1])
    out = {{}}
    with override_settings(VANISH=conf, MIDDLEWARE=settings.EMBEDDED_MIDDLEWARE):
        c = Client(HTTP_HOST={host!r})
        invalidate_all()
        first = c.get("/news/a")
        out["parent_first"] = first.get("Cache-Status")
        out["parent_body"] = first.content.decode()
        out["parent_second"] = c.get("/news/a").get("Cache-Status")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            child = {{}}
            child["first"] = c.get("/news/a").get("Cache-Status")
            child["second"] = c.get("/news/a").get("Cache-Status")
            child["purged"] = invalidate_tags("news-a").matched
            child["after"] = c.get("/news/a").get("Cache-Status")
            os.write(w, json.dumps(child).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        _, code = os.waitpid(pid, 0)
        out["child_pid"] = pid
        out["child"] = json.loads(data or b"null")
        out["child_exit"] = code
        after = c.get("/news/a")
        out["parent_after"] = after.get("Cache-Status")
        out["parent_after_body"] = after.content.decode()
    print(json.dumps(out))
''')


def test_fork_after_first_use(store, scratch):
    """A pre-fork server's case: the cache used, then fork(). The child starts its own
    runtime and store connections (no deadlock, no shared socket); with Redis it sees what
    the parent stored, and the parent sees the child's purge."""
    # Without an L1, the parent reads Redis directly: the child's purge is seen at once
    # (with an L1 it is seen within the lease, which test_embedded_workers.py covers).
    conf = embedded_settings(store, **({} if store == "memory" else
                                       {"REDIS": {"l1_capacity": 0, "prefix": "fork-test"}}))
    script = scratch / "fork_check.py"
    script.write_text(FORK_SCRIPT.format(project=str(PROJECT), host=HOST))
    done = subprocess.run([sys.executable, str(script), json.dumps(conf)], capture_output=True,
                          text=True, timeout=120, cwd=PROJECT,
                          env={**__import__("os").environ, "VANISH_TEST_DB": str(scratch / "fork.sqlite3")})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "fwd=miss" in out["parent_first"] and "hit" in out["parent_second"]
    assert out["child_exit"] == 0, out
    child = out["child"]
    if store == "memory":
        # The child's memory store is its own, new: it renders once, then hits.
        assert "fwd=miss" in child["first"] and "hit" in child["second"]
        assert child["purged"] == 1
        assert "hit" in out["parent_after"], "the parent's memory store is its own"
    else:
        assert "hit" in child["first"], "the child reads what the parent stored in Redis"
        assert child["purged"] >= 1
        # The child purged the parent's page and stored its own render: the parent gets that.
        assert out["parent_after_body"] != out["parent_body"], "the child's purge reached it"
        assert f"pid={out['child_pid']}" in out["parent_after_body"]
    assert "fwd=miss" in child["after"]
