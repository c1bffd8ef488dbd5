"""``manage.py vanish_purge``: in this process, and as a real command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from harness import PROJECT


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("vanish_purge", *args, stdout=out)
    return out.getvalue()


def test_purges_by_path_with_header(cache, origin):
    for lang in ("en", "fr"):
        cache.get("/news?page=2", lang)
        cache.get("/news", lang)
    out = run("--path", "/news", "--any-query", "--header", "accept-language=fr")
    assert "hard-purged 2 object(s)" in out
    assert cache.get("/news?page=2", "fr").miss and cache.get("/news", "fr").miss
    assert cache.get("/news?page=2", "en").hit and cache.get("/news", "en").hit


def test_several_selectors_and_relative_url(cache):
    for path in ("/news/a", "/news/b", "/news?page=3", "/about"):
        cache.get(path, "en")
    out = run("--tag", "news-a", "--prefix", "/news/b", "--url", "/news?page=3", "--json")
    assert '"matched": 3' in out
    assert cache.get("/about", "en").hit


def test_dry_run_and_soft(cache, site):
    cache.get("/news/a", "en")
    assert "would match 1 object(s)" in run("--tag", "news-a", "--dry-run")
    assert cache.get("/news/a", "en").hit
    assert "soft-purged 1 object(s)" in run("--all", "--soft")


@pytest.mark.parametrize("args, message", [
    ((), "name what to purge"),
    (("--path", "news"), "must start with '/'"),
    (("--tag", "x", "--header", "nonsense"), "NAME=VALUE"),
])
def test_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_unreachable_vanish_is_an_error_even_without_raise_errors(stopped_vanish):
    with override_settings(VANISH={**settings.VANISH, "ADMIN_URL": stopped_vanish,
                                   "RAISE_ERRORS": False, "RETRIES": 0}):
        with pytest.raises(CommandError, match="cannot reach the Vanish admin API"):
            run("--all")


def test_real_command_line_exit_codes(cache):
    cache.get("/news/a", "en")
    env = {**os.environ}
    ok = subprocess.run([sys.executable, "manage.py", "vanish_purge", "--tag", "news-a"],
                        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "hard-purged 1 object(s)" in ok.stdout
    bad = subprocess.run([sys.executable, "manage.py", "vanish_purge"], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "name what to purge" in bad.stderr
