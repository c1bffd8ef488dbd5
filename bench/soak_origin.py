#!/usr/bin/env python3
"""Soak test parts for bench/soak.sh (Python 3 standard library only, loopback only).

Two roles, one file:

  soak_origin.py origin --port P --fault-log FILE [--seed N]
      A small origin (http.server.ThreadingHTTPServer) with cacheable pages:
        /hot/<i>            (i < 200)      Cache-Control: public, max-age=600
        /tail/<b>/<i>       (b < 50, i < 1000; the long tail)   max-age=120
        /lang/<i>           (i < 100)      Vary: Accept-Language, max-age=300
        /blog/<i>?page=<n>  (i < 100)      max-age=300, query strings
      Bodies are 2-48 KiB (fixed per URL) and every page carries Surrogate-Key tags
      (`item-<i> <section> grp-<k>`). The first line of each body is the page's version stamp:
      `VERSION {json}`, one counter per purge selector that could name the page (see
      `components`), bumped by POST /__bump before the driver purges that selector.
      Injected faults, each at a fixed rate, each logged as one JSON line in the fault log:
        slow   1.0%   0.3-1.5 s pause before the response headers (must not become an error)
        503    0.5%   `503 Service Unavailable`, not cacheable
        reset  0.5%   headers and half the body, then a TCP reset (RST) mid-body
      GET /__stats answers the request and fault counts.

  soak_origin.py drive --proxy URL --admin URL --origin URL --seconds S --out FILE ...
      The checked load: asyncio HTTP/1.1 keep-alive clients on the proxy (a hot set and a long
      tail, two hosts, Accept-Language variants) and a purger sending ~100 purges/s of every
      selector type through the admin API (url, url+any_query, path, path+query, path+any_query
      with a header filter, prefix, prefix+host, tag, host, all; 20% of them soft). For each
      purge: bump the origin's counter for it, send the purge, note when it is acknowledged.
      A response to a request that started after that acknowledgement must carry a counter at
      least that high; anything lower is a stale-after-purge violation. Error responses are
      matched against the fault log (same URL, overlapping time) to explain them.
"""

import argparse
import asyncio
import bisect
import hashlib
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOSTS = ["soak.test", "b.soak.test"]
LANGS = [None, "en", "fr", "de"]
PREFIXES = ["/hot/", "/tail/", "/lang/", "/blog/"] + [f"/tail/{b}/" for b in range(50)]
HOT, TAIL_BUCKETS, TAIL_PER_BUCKET, LANG_PAGES, BLOG_PAGES = 200, 50, 1000, 100, 100

FAULT_SLOW, FAULT_503, FAULT_RESET = 0.010, 0.005, 0.005


def page_info(path):
    """(section, item, max_age, vary, tags) for a page path, or None."""
    parts = path.strip("/").split("/")
    try:
        if parts[0] == "hot" and len(parts) == 2 and int(parts[1]) < HOT:
            i = int(parts[1])
            return "hot", i, 600, False, [f"item-{i}", "hot", f"grp-{i % 64}"]
        if parts[0] == "tail" and len(parts) == 3:
            b, i = int(parts[1]), int(parts[2])
            if b < TAIL_BUCKETS and i < TAIL_PER_BUCKET:
                return "tail", i, 120, False, [f"item-{i}", "tail", f"grp-{i % 64}", f"bucket-{b}"]
        if parts[0] == "lang" and len(parts) == 2 and int(parts[1]) < LANG_PAGES:
            i = int(parts[1])
            return "lang", i, 300, True, [f"item-{i}", "lang", f"grp-{i % 64}"]
        if parts[0] == "blog" and len(parts) == 2 and int(parts[1]) < BLOG_PAGES:
            i = int(parts[1])
            return "blog", i, 300, False, [f"item-{i}", "blog", f"grp-{i % 64}"]
    except ValueError:
        return None
    return None


def components(host, path, query, lang, vary, tags):
    """Every counter whose purge names this page (and this variant)."""
    pq = path + ("?" + query if query is not None else "")
    keys = [
        f"u:{host}{pq}",            # url, exact query
        f"ua:{host}{path}",         # url + any_query
        f"pe:{pq}",                 # path (+ query), any host
        f"pa:{path}",               # path + any_query
        f"h:{host}",                # host
        "a",                        # all
    ]
    if vary:
        keys.append(f"pal:{path}|{lang or ''}")  # path + any_query + accept-language filter
    for p in PREFIXES:
        if path.startswith(p):
            keys.append(f"x:{p}")
            keys.append(f"xh:{host}|{p}")
    keys += [f"t:{t}" for t in tags]
    return keys


# ----------------------------------------------------------------------------- origin


class Origin:
    def __init__(self, fault_log, seed):
        self.lock = threading.Lock()
        self.counters = {}
        self.rng = random.Random(seed)
        self.fault_log = open(fault_log, "a", buffering=1)
        self.stats = {"requests": 0, "slow": 0, "503": 0, "reset": 0, "bumps": 0}

    def roll(self):
        with self.lock:
            self.stats["requests"] += 1
            r = self.rng.random()
        if r < FAULT_503:
            return "503"
        if r < FAULT_503 + FAULT_RESET:
            return "reset"
        if r < FAULT_503 + FAULT_RESET + FAULT_SLOW:
            return "slow"
        return None

    def log_fault(self, kind, host, pq):
        with self.lock:
            self.stats[kind] += 1
            self.fault_log.write(json.dumps({"t": time.time(), "kind": kind, "host": host, "pq": pq}) + "\n")

    def bump(self, keys):
        with self.lock:
            self.stats["bumps"] += 1
            out = {}
            for k in keys:
                self.counters[k] = self.counters.get(k, 0) + 1
                out[k] = self.counters[k]
            return out

    def stamp(self, keys):
        with self.lock:
            return {k: self.counters.get(k, 0) for k in keys}


def make_handler(origin):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "soak-origin"

        def log_message(self, *args):
            pass

        def send_body(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(n)
            if self.path == "/__bump":
                out = origin.bump(json.loads(data)["keys"])
                return self.send_body(200, json.dumps(out).encode(), [("Content-Type", "application/json")])
            self.send_body(404, b"no\n")

        def do_GET(self):
            if self.path == "/__stats":
                with origin.lock:
                    body = json.dumps(origin.stats).encode()
                return self.send_body(200, body, [("Content-Type", "application/json")])
            u = urlsplit(self.path)
            host = (self.headers.get("Host") or "").split(":")[0].lower()
            pq = u.path + ("?" + u.query if u.query else "")
            info = page_info(u.path)
            if info is None:
                return self.send_body(404, b"not found\n", [("Cache-Control", "no-store")])
            section, item, max_age, vary, tags = info
            lang = self.headers.get("Accept-Language") if vary else None
            fault = origin.roll()
            if fault == "503":
                origin.log_fault("503", host, pq)
                return self.send_body(503, b"injected 503\n", [("Retry-After", "1")])
            if fault == "slow":
                origin.log_fault("slow", host, pq)
                time.sleep(0.3 + 1.2 * random.random())
            keys = components(host, u.path, u.query if u.query else None, lang, vary, tags)
            stamp = origin.stamp(keys)
            size = 2048 + int(hashlib.sha1(pq.encode()).hexdigest()[:6], 16) % (46 * 1024)
            head = ("VERSION " + json.dumps(stamp, separators=(",", ":")) + "\n").encode()
            body = head + b"x" * max(0, size - len(head))
            headers = [
                ("Content-Type", "text/plain"),
                ("Cache-Control", f"public, max-age={max_age}"),
                ("Surrogate-Key", " ".join(tags)),
            ]
            if vary:
                headers.append(("Vary", "Accept-Language"))
                headers.append(("Content-Language", lang or "en"))
            if fault == "reset":
                origin.log_fault("reset", host, pq)
                self.send_response(200)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                # RST instead of FIN: linger on, zero timeout.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            self.send_body(200, body, headers)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Resets we inject ourselves and clients going away are expected; stay quiet.
        pass


def run_origin(args):
    origin = Origin(args.fault_log, args.seed)
    srv = Server(("127.0.0.1", args.port), make_handler(origin))
    print(f"soak origin on 127.0.0.1:{args.port}", flush=True)
    srv.serve_forever()


# ----------------------------------------------------------------------------- driver


class Conn:
    """One keep-alive HTTP/1.1 connection (just enough HTTP for this test)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def request(self, method, target, headers, body=b"", timeout=30):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.w.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        try:
            return await asyncio.wait_for(self._read(), timeout)
        except BaseException:
            self.close()
            raise

    async def _read(self):
        status_line = await self.r.readline()
        if not status_line:
            raise ConnectionError("closed before status")
        status = int(status_line.split()[1])
        hdrs = {}
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ConnectionError("closed in headers")
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            body = await self.r.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                chunks.append(await self.r.readexactly(size))
                await self.r.readexactly(2)
            body = b"".join(chunks)
        else:
            body = await self.r.read()
            self.close()
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, body

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


class Acks:
    """Per counter: (ack time, value) of acknowledged purges, for 'max value acked before t'."""

    def __init__(self):
        self.times, self.maxes = {}, {}

    def add(self, key, t, value):
        ts, ms = self.times.setdefault(key, []), self.maxes.setdefault(key, [])
        ts.append(t)
        ms.append(max(value, ms[-1] if ms else 0))

    def floor(self, key, t):
        ts = self.times.get(key)
        if not ts:
            return 0
        i = bisect.bisect_left(ts, t)
        return self.maxes[key][i - 1] if i else 0


def pick_url(rng):
    r = rng.random()
    host = HOSTS[0] if rng.random() < 0.8 else HOSTS[1]
    lang = None
    if r < 0.55:
        path = f"/hot/{int(rng.paretovariate(1.2)) % HOT}"
    elif r < 0.80:
        path = f"/tail/{rng.randrange(TAIL_BUCKETS)}/{rng.randrange(TAIL_PER_BUCKET)}"
    elif r < 0.92:
        path = f"/lang/{rng.randrange(LANG_PAGES)}"
        lang = rng.choice(LANGS)
    else:
        path = f"/blog/{rng.randrange(BLOG_PAGES)}?page={rng.randrange(5)}"
    return host, path, lang


SELECTOR_WEIGHTS = [
    ("url", 20), ("url_any_query", 8), ("path", 15), ("path_query", 8), ("path_lang", 10),
    ("prefix", 4), ("prefix_host", 4), ("tag", 25), ("host", 0.3), ("all", 0.1),
]


def pick_purge(rng):
    """(selector JSON, counters it bumps)."""
    kind = rng.choices([k for k, _ in SELECTOR_WEIGHTS], [w for _, w in SELECTOR_WEIGHTS])[0]
    host, pq, _ = pick_url(rng)
    path, _, query = pq.partition("?")
    if kind == "url":
        return {"type": "url", "url": f"http://{host}{pq}"}, [f"u:{host}{pq}"]
    if kind == "url_any_query":
        return {"type": "url", "url": f"http://{host}{path}", "any_query": True}, [f"ua:{host}{path}"]
    if kind == "path":
        return {"type": "path", "path": path}, [f"pe:{path}"]
    if kind == "path_query":
        path, q = f"/blog/{rng.randrange(BLOG_PAGES)}", f"page={rng.randrange(5)}"
        return {"type": "path", "path": path, "query": q}, [f"pe:{path}?{q}"]
    if kind == "path_lang":
        path, lang = f"/lang/{rng.randrange(LANG_PAGES)}", rng.choice(LANGS[1:])
        sel = {"type": "path", "path": path, "any_query": True, "headers": {"accept-language": lang}}
        return sel, [f"pal:{path}|{lang}"]
    if kind == "prefix":
        p = rng.choice(PREFIXES[4:]) if rng.random() < 0.9 else rng.choice(PREFIXES[:4])
        return {"type": "prefix", "prefix": p}, [f"x:{p}"]
    if kind == "prefix_host":
        p = rng.choice(PREFIXES[4:]) if rng.random() < 0.9 else rng.choice(PREFIXES[:4])
        return {"type": "prefix", "prefix": p, "host": host}, [f"xh:{host}|{p}"]
    if kind == "tag":
        t = rng.choice([f"item-{rng.randrange(HOT)}", f"grp-{rng.randrange(64)}", f"bucket-{rng.randrange(50)}"])
        return {"type": "tag", "tag": t}, [f"t:{t}"]
    if kind == "host":
        return {"type": "host", "host": HOSTS[1]}, [f"h:{HOSTS[1]}"]
    return {"type": "all"}, ["a"]


class Driver:
    def __init__(self, args):
        self.args = args
        self.proxy = urlsplit(args.proxy)
        self.admin = urlsplit(args.admin)
        self.origin = urlsplit(args.origin)
        self.acks = Acks()
        self.stop_at = time.monotonic() + args.seconds
        self.results = {
            "requests": 0, "ok": 0, "status": {}, "errors": [], "stale": [], "cache_status": {},
            "purges": {"sent": 0, "acked": 0, "failed": 0, "by_type": {}, "matched": 0,
                       "ack_ms": []},
        }

    async def client(self, n):
        rng = random.Random(self.args.seed * 1000 + n)
        conn = Conn(self.proxy.hostname, self.proxy.port)
        res = self.results
        while time.monotonic() < self.stop_at:
            host, pq, lang = pick_url(rng)
            headers = {"Host": host}
            if lang:
                headers["Accept-Language"] = lang
            t0, w0 = time.monotonic(), time.time()
            try:
                status, hdrs, body = await conn.request("GET", pq, headers)
            except Exception as e:  # noqa: BLE001 - every failure is classified below
                res["requests"] += 1
                res["errors"].append({"kind": type(e).__name__, "host": host, "pq": pq,
                                      "t0": w0, "t1": time.time()})
                continue
            res["requests"] += 1
            res["status"][status] = res["status"].get(status, 0) + 1
            cs = hdrs.get("cache-status", "")
            cs_kind = "hit" if "; hit" in cs else ("stale" if "fwd=stale" in cs else "fwd")
            res["cache_status"][cs_kind] = res["cache_status"].get(cs_kind, 0) + 1
            if status != 200:
                res["errors"].append({"kind": f"status {status}", "host": host, "pq": pq,
                                      "t0": w0, "t1": time.time()})
                continue
            res["ok"] += 1
            if not body.startswith(b"VERSION "):
                res["errors"].append({"kind": "bad body", "host": host, "pq": pq, "t0": w0, "t1": time.time()})
                continue
            stamp = json.loads(body[8:body.index(b"\n")])
            for k, v in stamp.items():
                floor = self.acks.floor(k, t0)
                if v < floor:
                    res["stale"].append({"key": k, "seen": v, "acked": floor, "host": host, "pq": pq,
                                         "lang": lang, "cache_status": cs, "age": hdrs.get("age")})
                    break

    async def purger(self, n, rate):
        rng = random.Random(self.args.seed * 7919 + n)
        origin = Conn(self.origin.hostname, self.origin.port)
        admin = Conn(self.admin.hostname, self.admin.port)
        res = self.results["purges"]
        interval = 1.0 / rate
        next_t = time.monotonic()
        while time.monotonic() < self.stop_at:
            next_t += interval
            sel, keys = pick_purge(rng)
            if rng.random() < 0.2:
                body = {"selectors": [sel], "mode": "soft"}
            else:
                body = {"selectors": [sel]}
            status, _, b = await origin.request("POST", "/__bump", {"Host": "origin"},
                                                json.dumps({"keys": keys}).encode())
            values = json.loads(b)
            t_send = time.monotonic()
            res["sent"] += 1
            kind = sel["type"] + ("+host" if "host" in sel and sel["type"] == "prefix" else "") + \
                ("+query" if "query" in sel else "") + ("+any_query" if sel.get("any_query") else "") + \
                ("+headers" if "headers" in sel else "")
            res["by_type"][kind] = res["by_type"].get(kind, 0) + 1
            try:
                status, _, b = await admin.request("POST", "/invalidate", {"Host": "127.0.0.1",
                                                   "Content-Type": "application/json"},
                                                   json.dumps(body).encode())
            except Exception:  # noqa: BLE001
                status = 0
            t_ack = time.monotonic()
            if status == 200:
                res["acked"] += 1
                res["matched"] += json.loads(b).get("matched", 0)
                res["ack_ms"].append((t_ack - t_send) * 1000)
                for k, v in values.items():
                    self.acks.add(k, t_ack, v)
            else:
                res["failed"] += 1
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def run(self):
        tasks = [asyncio.create_task(self.client(i)) for i in range(self.args.clients)]
        purgers = 4
        tasks += [asyncio.create_task(self.purger(i, self.args.purge_rate / purgers)) for i in range(purgers)]
        await asyncio.gather(*tasks)


def explain_errors(errors, fault_log):
    faults = {}
    if os.path.exists(fault_log):
        with open(fault_log) as f:
            for line in f:
                d = json.loads(line)
                faults.setdefault((d["host"], d["pq"]), []).append((d["t"], d["kind"]))
    # What each injected fault can explain: an origin 503 is passed on as 503; a reset
    # mid-body ends the client's response early (its headers were already sent), or is a 502
    # from Vanish where the client's response had not started (a waiter on a coalesced fill).
    explains = {"status 503": ("503",), "status 502": ("reset",)}
    out, unexplained, samples = {}, [], {}
    for e in errors:
        kinds = explains.get(e["kind"], ("reset",) if not e["kind"].startswith("status") else ())
        near = [k for (t, k) in faults.get((e["host"], e["pq"]), [])
                if e["t0"] - 1.0 <= t <= e["t1"] + 1.0]
        match = next((k for k in kinds if k in near), None)
        if match:
            cause = f"origin {match} -> {e['kind']}"
        else:
            cause = f"UNEXPLAINED {e['kind']}"
            unexplained.append(dict(e, faults_near=near))
        out[cause] = out.get(cause, 0) + 1
        samples.setdefault(cause, []).append(e)
    return out, unexplained, {k: v[:3] for k, v in samples.items()}


def run_driver(args):
    d = Driver(args)
    asyncio.run(d.run())
    res = d.results
    causes, unexplained, samples = explain_errors(res["errors"], args.fault_log)
    acks = sorted(res["purges"].pop("ack_ms"))
    pct = (lambda p: round(acks[min(len(acks) - 1, int(p * len(acks)))], 2)) if acks else (lambda p: None)
    report = {
        "seconds": args.seconds,
        "requests": res["requests"],
        "ok": res["ok"],
        "status": {str(k): v for k, v in sorted(res["status"].items())},
        "cache_status": res["cache_status"],
        "errors_by_cause": causes,
        "unexplained_examples": unexplained[:20],
        "error_examples": samples,
        "stale_after_purge": len(res["stale"]),
        "stale_examples": res["stale"][:20],
        "purges": dict(res["purges"], ack_ms_p50=pct(0.5), ack_ms_p99=pct(0.99), ack_ms_max=acks[-1] if acks else None),
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("examples")}, indent=2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="role", required=True)
    o = sub.add_parser("origin")
    o.add_argument("--port", type=int, required=True)
    o.add_argument("--fault-log", required=True)
    o.add_argument("--seed", type=int, default=1)
    d = sub.add_parser("drive")
    d.add_argument("--proxy", required=True)
    d.add_argument("--admin", required=True)
    d.add_argument("--origin", required=True)
    d.add_argument("--fault-log", required=True)
    d.add_argument("--seconds", type=float, required=True)
    d.add_argument("--clients", type=int, default=32)
    d.add_argument("--purge-rate", type=float, default=100.0)
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--out", required=True)
    args = ap.parse_args()
    for u in [getattr(args, a, None) for a in ("proxy", "admin", "origin")]:
        if u and urlsplit(u).hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"soak_origin.py: loopback only, refusing {u}")
    if args.role == "origin":
        run_origin(args)
    else:
        run_driver(args)


if __name__ == "__main__":
    main()
