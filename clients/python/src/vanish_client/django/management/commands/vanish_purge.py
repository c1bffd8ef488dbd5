"""``manage.py vanish_purge``: purge Vanish from the command line, with the ``VANISH`` settings.

Examples::

    manage.py vanish_purge --url /news?page=2                 # joined to VANISH['SITE']
    manage.py vanish_purge --path /news --any-query --header accept-language=fr
    manage.py vanish_purge --tag news --tag post-42 --prefix /blog/
    manage.py vanish_purge --all --soft --dry-run

Every selector given goes into one admin request. Prints the answer; exits 1 when Vanish
cannot be reached or refuses the purge (``CommandError``), whatever ``RAISE_ERRORS`` says.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Dict, Iterator, List

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....errors import SelectorError, VanishError
from ....selectors import HARD, SOFT, Selector
from ...conf import get_client, get_settings


@contextlib.contextmanager
def as_command_error() -> Iterator[None]:
    """Bad arguments and settings become a one-line CommandError."""
    try:
        yield
    except (SelectorError, ImproperlyConfigured) as e:
        raise CommandError(str(e)) from e


class Command(BaseCommand):
    help = "Purge pages from the Vanish cache (one admin request for every selector given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", action="append", default=[],
                            help="a URL (relative ones are joined to VANISH['SITE'])")
        parser.add_argument("--path", action="append", default=[], help="a path, on every host")
        parser.add_argument("--prefix", action="append", default=[], help="a path prefix")
        parser.add_argument("--tag", action="append", default=[], help="a tag")
        parser.add_argument("--host", action="append", default=[],
                            help="everything of a host (without a port: every port)")
        parser.add_argument("--all", action="store_true", help="everything")
        parser.add_argument("--any-query", action="store_true",
                            help="--url/--path: every query string")
        parser.add_argument("--query", help="--path: exactly this query string")
        parser.add_argument("--on-host", help="--prefix: only on this host")
        parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                            help="only variants requested with this header value")
        parser.add_argument("--soft", action="store_true", help="mark stale instead of removing")
        parser.add_argument("--dry-run", action="store_true", help="count only")
        parser.add_argument("--json", action="store_true", help="print the raw JSON answer")

    def handle(self, *args: Any, **opts: Any) -> None:
        selectors = self.selectors(opts)
        with as_command_error():
            conf = get_settings()
            client = get_client(conf)
        try:
            result = client.purge(*selectors, mode=SOFT if opts["soft"] else HARD,
                                  dry_run=opts["dry_run"])
        except VanishError as e:
            raise CommandError(str(e)) from e
        if opts["json"]:
            self.stdout.write(json.dumps(result.raw, sort_keys=True))
        else:
            what = "would match" if result.dry_run else f"{result.mode}-purged"
            self.stdout.write(f"{what} {result.matched} object(s) "
                              f"(purge {result.id}, {result.duration_us} µs)")

    def selectors(self, opts: Dict[str, Any]) -> List[Selector]:
        """The selectors named on the command line (CommandError when none or invalid)."""
        with as_command_error():
            headers = {}
            for h in opts["header"]:
                name, sep, value = h.partition("=")
                if not sep or not name:
                    raise CommandError(f"--header {h!r}: expected NAME=VALUE")
                headers[name] = value
            conf = get_settings()
            out: List[Selector] = []
            for url in opts["url"]:
                s = Selector.url(conf.absolute_url(url))
                out.append(s.any_query() if opts["any_query"] else s)
            for path in opts["path"]:
                s = Selector.path(path)
                if opts["query"] is not None:
                    s = s.query(opts["query"])
                out.append(s.any_query() if opts["any_query"] else s)
            for prefix in opts["prefix"]:
                s = Selector.prefix(prefix)
                out.append(s.on_host(opts["on_host"]) if opts["on_host"] else s)
            out += [Selector.tag(t) for t in opts["tag"]]
            out += [Selector.host(h) for h in opts["host"]]
            if opts["all"]:
                out.append(Selector.all())
            if not out:
                raise CommandError(
                    "name what to purge: --url, --path, --prefix, --tag, --host or --all")
            return [s.with_headers(headers) for s in out]
