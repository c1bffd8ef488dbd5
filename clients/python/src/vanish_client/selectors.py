"""Typed purge selectors, mirroring the Rust ``vanish_engine::Selector`` builder.

A :class:`Selector` names what a purge removes. Build one with a constructor and refine it
with chained methods; every method returns a new, immutable selector::

    Selector.url("https://example.com/news?page=2")          # that URL, all variants
    Selector.url("https://example.com/news").any_query()     # every query of that path
    Selector.path("/news").any_query().header("accept-language", "fr")
    Selector.path("/search").query("q=vanish")               # exact query, every host
    Selector.prefix("/blog/").on_host("example.com")
    Selector.tag("post-42")
    Selector.host("example.com")
    Selector.all()

The JSON form (``Selector.to_json()``) is what ``POST /invalidate`` takes. Selectors are
validated here with the server's rules, so mistakes fail before anything is sent, with a
:class:`~vanish_client.errors.SelectorError` naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Literal, Mapping, Optional, Tuple
from urllib.parse import quote, urlsplit, urlunsplit

from .errors import SelectorError

SelectorType = Literal["url", "path", "prefix", "tag", "host", "all"]
Mode = Literal["hard", "soft"]

HARD: Mode = "hard"
"""Remove matched objects (the default)."""
SOFT: Mode = "soft"
"""Keep matched objects but mark them stale: the next request revalidates."""

# RFC 9110 token characters: what a header name may contain.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def iri_to_uri(text: str) -> str:
    """Percent-encodes what a request line cannot carry raw (non-ASCII, spaces, quotes...),
    leaving reserved characters and existing ``%XX`` escapes alone (as Django's
    ``iri_to_uri``). Clients send ``/caf%C3%A9``; Vanish stores that, so a selector naming
    ``/café`` must say it the same way."""
    return quote(text, safe="/#%[]=:;$&()+,!?*@'~")


def _check_header_name(name: str) -> str:
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise SelectorError(f"invalid header name {name!r}", "headers")
    return name.lower()


def _check_url(url: str) -> str:
    if not isinstance(url, str) or not url:
        raise SelectorError("is required", "url")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SelectorError(
            f"must be an absolute http:// or https:// URL with a host, got {url!r}", "url"
        )
    # A #fragment never reaches a server: dropped, as Vanish drops it.
    out = urlunsplit((parts.scheme, parts.netloc, iri_to_uri(parts.path),
                      iri_to_uri(parts.query), ""))
    explicit_empty_query = "?" in url and not parts.query
    return out + "?" if explicit_empty_query else out  # `/p?` is not `/p` to Vanish


@dataclass(frozen=True)
class Selector:
    """One selector of a purge: a target plus an optional filter on variant header values.

    Do not call the constructor directly; use :meth:`url`, :meth:`path`, :meth:`prefix`,
    :meth:`tag`, :meth:`host` or :meth:`all`.
    """

    type: SelectorType
    value: Optional[str] = None
    """The URL, path, prefix, tag or host (None for ``all``)."""
    any_query_: bool = False
    query_: Optional[str] = None
    host_: Optional[str] = None
    """For ``prefix`` selectors: restrict to this host."""
    headers: Tuple[Tuple[str, str], ...] = field(default=())
    """(lower-cased name, value) pairs: only variants requested with these values."""

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def url(cls, url: str) -> "Selector":
        """One URL (exact query string; every header variant; any scheme).

        Non-ASCII characters in the path or query are percent-encoded (UTF-8), as browsers
        send them; the query is otherwise matched exactly as written (``a+b`` is not
        ``a%20b``, ``b=1&a=2`` is not ``a=2&b=1`` unless Vanish's key policy sorts queries).
        """
        return cls("url", _check_url(url))

    @classmethod
    def path(cls, path: str) -> "Selector":
        """A path on every host (no query unless :meth:`query` or :meth:`any_query`).

        A query string in ``path`` (``"/p?a=1"``) is taken as :meth:`query`.
        """
        if not isinstance(path, str) or not path.startswith("/"):
            raise SelectorError(f"must start with '/', got {path!r}", "path")
        if "?" in path:
            path, query = path.split("?", 1)
            return cls("path", iri_to_uri(path), query_=iri_to_uri(query))
        return cls("path", iri_to_uri(path))

    @classmethod
    def prefix(cls, prefix: str) -> "Selector":
        """Every path starting with ``prefix``, on every host (see :meth:`on_host`)."""
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise SelectorError(f"must start with '/', got {prefix!r}", "prefix")
        return cls("prefix", iri_to_uri(prefix))

    @classmethod
    def tag(cls, tag: str) -> "Selector":
        """Every object carrying ``tag`` (from ``Surrogate-Key``, ``Cache-Tag``, ``xkey``...)."""
        if not isinstance(tag, str) or not tag:
            raise SelectorError("must be a non-empty string", "tag")
        if any(c.isspace() for c in tag):
            raise SelectorError(
                f"must not contain whitespace (tag headers are space-separated), got {tag!r}",
                "tag",
            )
        return cls("tag", tag)

    @classmethod
    def host(cls, host: str) -> "Selector":
        """Everything of one host; without a port it matches every port of that host."""
        if not isinstance(host, str) or not host.strip():
            raise SelectorError("must be a non-empty host name", "host")
        if "/" in host:
            raise SelectorError(f"must be a host[:port], not a URL: {host!r}", "host")
        return cls("host", host)

    @classmethod
    def all(cls) -> "Selector":
        """Everything in the cache."""
        return cls("all")

    # -- refinements --------------------------------------------------------------------

    def any_query(self) -> "Selector":
        """Match every query string (and none) of a ``url`` or ``path`` selector."""
        if self.type not in ("url", "path"):
            raise SelectorError(f"only url and path selectors take it, not {self.type}", "any_query")
        if self.query_ is not None:
            raise SelectorError("cannot be combined with query", "any_query")
        if self.type == "url" and urlsplit(self.value or "").query:
            raise SelectorError("the URL already names a query string", "any_query")
        return replace(self, any_query_=True)

    def query(self, query: str) -> "Selector":
        """Match exactly this query string (without ``?``) of a ``path`` selector.

        For a ``url`` selector, put the query in the URL instead.
        """
        if self.type != "path":
            raise SelectorError(
                f"only path selectors take it, not {self.type} (put it in the URL)", "query"
            )
        if self.any_query_:
            raise SelectorError("cannot be combined with any_query", "query")
        return replace(self, query_=iri_to_uri(query.lstrip("?")))

    def on_host(self, host: str) -> "Selector":
        """Restrict a ``prefix`` selector to one host (without a port: every port)."""
        if self.type != "prefix":
            raise SelectorError(f"only prefix selectors take it, not {self.type}", "host")
        if not host:
            raise SelectorError("must be a non-empty host name", "host")
        return replace(self, host_=host)

    def header(self, name: str, value: str) -> "Selector":
        """Only variants whose request had exactly ``value`` for header ``name``.

        An object that does not vary on ``name`` serves every value of it, so it matches.
        """
        lname = _check_header_name(name)
        if not isinstance(value, str):
            raise SelectorError("must be a string", f"headers.{name}")
        for existing, v in self.headers:
            if existing == lname and v != value:
                raise SelectorError(
                    f"given twice with different values ({v!r}, {value!r})", f"headers.{name}"
                )
        if (lname, value) in self.headers:
            return self
        return replace(self, headers=self.headers + ((lname, value),))

    def with_headers(self, headers: Optional[Mapping[str, str]]) -> "Selector":
        """:meth:`header` for each item of a mapping (None or empty: unchanged)."""
        sel = self
        for name, value in (headers or {}).items():
            sel = sel.header(name, value)
        return sel

    # -- wire form ----------------------------------------------------------------------

    def to_json(self) -> Dict[str, Any]:
        """The selector object of ``POST /invalidate``."""
        out: Dict[str, Any] = {"type": self.type}
        if self.type != "all":
            out[self.type] = self.value
        if self.any_query_:
            out["any_query"] = True
        if self.query_ is not None:
            out["query"] = self.query_
        if self.host_ is not None:
            out["host"] = self.host_
        if self.headers:
            out["headers"] = dict(self.headers)
        return out

    def __str__(self) -> str:
        extra = ""
        if self.any_query_:
            extra += " any_query"
        if self.query_ is not None:
            extra += f" query={self.query_}"
        if self.host_:
            extra += f" host={self.host_}"
        for n, v in self.headers:
            extra += f" {n}={v}"
        return f"{self.type}:{self.value or '*'}{extra}"


def purge_body(selectors: "tuple[Selector, ...] | list[Selector]", mode: Mode = HARD,
               dry_run: bool = False) -> Dict[str, Any]:
    """The JSON body of one ``POST /invalidate`` for these selectors."""
    if not selectors:
        raise SelectorError("must not be empty: name at least one selector", "selectors")
    for i, s in enumerate(selectors):
        if not isinstance(s, Selector):
            raise SelectorError(f"expected a Selector, got {type(s).__name__}", f"selectors[{i}]")
    if mode not in (HARD, SOFT):
        raise SelectorError(f"must be 'hard' or 'soft', got {mode!r}", "mode")
    body: Dict[str, Any] = {"selectors": [s.to_json() for s in selectors], "mode": mode}
    if dry_run:
        body["dry_run"] = True
    return body
