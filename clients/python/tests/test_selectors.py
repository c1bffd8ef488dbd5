"""Selector builders: their JSON, and the mistakes they catch before anything is sent."""

from __future__ import annotations

import dataclasses

import pytest

from vanish_client import Selector, SelectorError
from vanish_client.selectors import purge_body


@pytest.mark.parametrize("selector, expected", [
    (Selector.url("https://h/p?q=1"), {"type": "url", "url": "https://h/p?q=1"}),
    (Selector.url("http://h/p").any_query(), {"type": "url", "url": "http://h/p",
                                               "any_query": True}),
    (Selector.path("/p"), {"type": "path", "path": "/p"}),
    (Selector.path("/p?a=1"), {"type": "path", "path": "/p", "query": "a=1"}),
    (Selector.path("/p").query("?a=1"), {"type": "path", "path": "/p", "query": "a=1"}),
    (Selector.path("/p").any_query().header("Accept-Language", "fr"),
     {"type": "path", "path": "/p", "any_query": True, "headers": {"accept-language": "fr"}}),
    (Selector.prefix("/blog/").on_host("Example.com:8080"),
     {"type": "prefix", "prefix": "/blog/", "host": "Example.com:8080"}),
    (Selector.tag("post-42"), {"type": "tag", "tag": "post-42"}),
    (Selector.host("example.com"), {"type": "host", "host": "example.com"}),
    (Selector.all(), {"type": "all"}),
    (Selector.all().with_headers({"Accept-Encoding": "br", "Accept-Language": "fr"}),
     {"type": "all", "headers": {"accept-encoding": "br", "accept-language": "fr"}}),
])
def test_json(selector, expected):
    assert selector.to_json() == expected


@pytest.mark.parametrize("selector, expected", [
    (Selector.url("https://h/café/?q=crème brûlée"),
     {"type": "url", "url": "https://h/caf%C3%A9/?q=cr%C3%A8me%20br%C3%BBl%C3%A9e"}),
    (Selector.url("https://h/caf%C3%A9/?a=1&b=%2F"),
     {"type": "url", "url": "https://h/caf%C3%A9/?a=1&b=%2F"}),
    (Selector.url("https://h/p?"), {"type": "url", "url": "https://h/p?"}),
    (Selector.url("https://h/p?#top"), {"type": "url", "url": "https://h/p?"}),
    (Selector.url("https://h/p#top"), {"type": "url", "url": "https://h/p"}),
    (Selector.path("/café?q=ü"), {"type": "path", "path": "/caf%C3%A9", "query": "q=%C3%BC"}),
    (Selector.prefix("/über/"), {"type": "prefix", "prefix": "/%C3%BCber/"}),
])
def test_non_ascii_is_percent_encoded_as_clients_send_it(selector, expected):
    assert selector.to_json() == expected


def test_selectors_are_immutable_values():
    base = Selector.path("/p")
    refined = base.any_query()
    assert base.to_json() == {"type": "path", "path": "/p"}
    assert refined != base and refined == Selector.path("/p").any_query()
    assert len({refined, Selector.path("/p").any_query()}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.type = "tag"  # type: ignore[misc]


@pytest.mark.parametrize("build, field", [
    (lambda: Selector.url("/relative"), "url"),
    (lambda: Selector.url("ftp://h/p"), "url"),
    (lambda: Selector.url("https://h/p?q=1").any_query(), "any_query"),
    (lambda: Selector.url("https://h/p").query("a=1"), "query"),
    (lambda: Selector.path("p"), "path"),
    (lambda: Selector.path("/p").query("a=1").any_query(), "any_query"),
    (lambda: Selector.path("/p").any_query().query("a=1"), "query"),
    (lambda: Selector.prefix("blog"), "prefix"),
    (lambda: Selector.path("/p").on_host("h"), "host"),
    (lambda: Selector.tag(""), "tag"),
    (lambda: Selector.tag("two tags"), "tag"),
    (lambda: Selector.tag("post-1").any_query(), "any_query"),
    (lambda: Selector.host(""), "host"),
    (lambda: Selector.host("https://h/"), "host"),
    (lambda: Selector.all().header("bad name", "x"), "headers"),
    (lambda: Selector.all().header("a", "1").header("A", "2"), "headers.A"),
])
def test_mistakes_name_the_field(build, field):
    with pytest.raises(SelectorError) as info:
        build()
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_purge_body():
    assert purge_body([Selector.tag("a"), Selector.all()], "soft", dry_run=True) == {
        "selectors": [{"type": "tag", "tag": "a"}, {"type": "all"}],
        "mode": "soft",
        "dry_run": True,
    }
    with pytest.raises(SelectorError, match="selectors"):
        purge_body([])
    with pytest.raises(SelectorError, match="mode"):
        purge_body([Selector.all()], "gentle")  # type: ignore[arg-type]
    with pytest.raises(SelectorError, match=r"selectors\[0\]"):
        purge_body(["tag:a"])  # type: ignore[list-item]


def test_str_is_readable_in_logs():
    assert str(Selector.path("/p").any_query().header("accept-language", "fr")) == \
        "path:/p any_query accept-language=fr"
    assert str(Selector.all()) == "all:*"
