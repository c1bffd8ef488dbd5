#!/usr/bin/env python3
"""Pattern deletes on Redis, as a Django site does them (used by bench/purge.sh).

Loads Django-style cache keys (cache_page + cache_header per URL) with `redis-cli --pipe`,
then times deleting one URL's keys with `KEYS pattern` + `DEL` and with `SCAN MATCH` + `DEL`,
measured client-side over one loopback connection (a minimal RESP client, no dependencies).
Prints a markdown table. Usage: redis_purge.py PORT [URLS]
"""

import hashlib
import socket
import statistics
import subprocess
import sys
import time

PORT = int(sys.argv[1])
URLS = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
PREFIX = hashlib.md5(b"vanish-bench").hexdigest()
VALUE = b"v" * 100
HEADERS_MD5 = hashlib.md5(b"accept-language").hexdigest()
# Django: views.decorators.cache.cache_page.<key_prefix>.<method>.<url md5>.<headers md5>
# and views.decorators.cache.cache_header.<key_prefix>.<url md5>, plus the i18n/tz suffix,
# under the cache's KEY_PREFIX ("") and VERSION (1).


def url_md5(i):
    return hashlib.md5(f"http://shop.example/products/{i}".encode()).hexdigest()


def page_key(u):
    return f":1:views.decorators.cache.cache_page.{PREFIX}.GET.{u}.{HEADERS_MD5}.en-us.UTC"


def header_key(u):
    return f":1:views.decorators.cache.cache_header.{PREFIX}.{u}.en-us.UTC"


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.sock.sendall(resp(*args))
        return self._reply()


def load():
    """1 page key + 1 header key per URL, through redis-cli --pipe."""
    proto = bytearray()
    for i in range(URLS):
        u = url_md5(i)
        proto += resp("SET", page_key(u), VALUE)
        proto += resp("SET", header_key(u), VALUE)
    t = time.perf_counter()
    r = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(PORT), "--pipe"],
        input=bytes(proto),
        capture_output=True,
        check=True,
    )
    took = time.perf_counter() - t
    if b"errors: 0" not in r.stdout:
        sys.exit(f"redis-cli --pipe reported errors: {r.stdout.decode()}")
    return took


def restore(c, u):
    c.call("SET", page_key(u), VALUE)
    c.call("SET", header_key(u), VALUE)


def pattern(u):
    # What a Django site must do to drop one URL's cached variants: match on the URL's md5.
    return f":1:views.decorators.cache.cache_*.{PREFIX}.*{u}*"


def keys_del(c, u):
    t = time.perf_counter()
    found = c.call("KEYS", pattern(u))
    deleted = c.call("DEL", *found) if found else 0
    return time.perf_counter() - t, deleted


def scan_del(c, u, count):
    t = time.perf_counter()
    cursor, found, trips = b"0", [], 0
    while True:
        cursor, batch = c.call("SCAN", cursor, "MATCH", pattern(u), "COUNT", str(count))
        trips += 1
        found += batch
        if cursor == b"0":
            break
    deleted = c.call("DEL", *found) if found else 0
    return time.perf_counter() - t, deleted, trips


def main():
    load_s = load()
    c = Client(PORT)
    dbsize = c.call("DBSIZE")
    used = c.call("INFO", "memory").decode()
    used_mb = next(
        int(l.split(":")[1]) for l in used.splitlines() if l.startswith("used_memory:")
    ) / (1 << 20)
    rows = []
    runs = [(url_md5(i * 7919 % URLS)) for i in range(1, 8)]

    def measure(name, f, runs_used):
        times, extra = [], None
        for u in runs_used:
            r = f(c, u)
            assert r[1] == 2, f"{name}: deleted {r[1]} keys, expected 2"
            times.append(r[0] * 1000)
            extra = r[2:] if len(r) > 2 else extra
            restore(c, u)
        rows.append((name, statistics.median(times), max(times), len(times), extra))

    measure("`KEYS pattern` + `DEL`", keys_del, runs)
    measure("`SCAN MATCH pattern COUNT 1000` + `DEL`", lambda c, u: scan_del(c, u, 1000), runs)
    measure(
        "`SCAN MATCH pattern` (COUNT 10, django-redis' default itersize) + `DEL`",
        lambda c, u: scan_del(c, u, 10),
        runs[:3],
    )
    # The exact-key delete a cache with an index makes possible, for scale.
    def direct(c, u):
        t = time.perf_counter()
        n = c.call("DEL", page_key(u), header_key(u))
        return time.perf_counter() - t, n

    measure("`DEL` of the two known keys (no pattern)", direct, runs)

    print(
        f"Redis: {dbsize} keys ({URLS} URLs x cache_page + cache_header), "
        f"used_memory {used_mb:.0f} MiB, loaded with redis-cli --pipe in {load_s:.1f} s."
    )
    print()
    print("| delete one URL's keys (2 of them) | median | max | runs |")
    print("| --- | ---: | ---: | ---: |")
    for name, med, mx, n, extra in rows:
        note = f" ({extra[0]} round trips)" if extra else ""
        print(f"| {name}{note} | {med:.2f} ms | {mx:.2f} ms | {n} |")


if __name__ == "__main__":
    main()
