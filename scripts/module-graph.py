#!/usr/bin/env python3
"""The module import graph of each crate, and the check that it runs downward.

Usage:
  scripts/module-graph.py CRATE_SRC [-v]     print the graph of one crate's src/ (-v: every edge)
  scripts/module-graph.py --check            check every crate in LAYERS (scripts/test.sh runs it)

A module is a file (`a/b.rs` or `a/b/mod.rs` is `a::b`). An edge is a path the file names:
`crate::x::y`, `super::y`, `self::y`, or `y::` for a child module `y`, in code outside
`#[cfg(test)] mod tests` and comments. Visibility (`pub(crate)`, `pub(super)`) is not an edge.

--check fails (exit 1) on an import loop, on an import from a lower layer to a higher one, and on
a module no layer lists (so a new file is placed on purpose). docs/architecture.md explains the
layers.
"""
import os
import re
import sys

# Each crate's layers, bottom first. A module may import modules of its own layer (without a
# loop) or of lower layers. The crate root (lib.rs, main.rs) is above everything.
LAYERS = {
    "crates/engine/src": [
        ("ground", ["url", "headers", "body", "variant", "cache_status", "purge::tags",
                    "policy::negotiation", "settings", "validators", "preconditions",
                    "vary_normalize", "directives", "coding", "decode", "compress"]),
        ("names", ["key", "origin", "forwarding"]),
        ("objects", ["object", "coalesce", "config"]),
        ("invalidation", ["purge", "purge::selector", "purge::dialects", "purge::index",
                          "purge::log"]),
        ("rules", ["freshness", "lifetime", "policy", "policy::key_policy", "policy::query",
                   "policy::rules"]),
        ("storage", ["store", "invalidator"]),
        ("cache", ["cache", "cache::handle", "cache::serve", "cache::lookup", "cache::fill",
                   "cache::admission", "cache::revalidate", "cache::deliver", "cache::range",
                   "cache::forward",
                   "cache::unsafe_methods"]),
    ],
    "crates/redis/src": [
        ("encodings", ["config", "layout", "wire", "codec", "scripts", "epochs", "error", "ticks",
                       "l1::lease", "testing"]),
        ("parts", ["messages", "connection", "l1"]),
        ("paths", ["l2", "notify"]),
        ("upkeep", ["housekeeping"]),
        ("store", ["store"]),
    ],
    "crates/disk/src": [
        ("formats", ["record", "codec", "wire", "admission", "metrics"]),
        ("parts", ["index", "segments", "purge_log"]),
        ("state", ["state"]),
        ("threads", ["writer", "rebuild"]),
        ("tier", ["tier"]),
        ("store", ["hybrid"]),
    ],
    "crates/memory/src": [
        ("parts", ["expiry", "reclaim"]),
    ],
    "crates/tower/src": [
        ("parts", ["tags", "origin", "layer"]),
    ],
    "crates/python/src": [
        ("parts", ["options", "store", "policy"]),
        ("process", ["process"]),
        ("exchange", ["exchange"]),
    ],
    "crates/vanish/src": [
        ("parts", ["allocator", "telemetry", "config", "connections", "cli", "demo",
                   "admin::auth", "admin::browser", "admin::explain", "proxy::guard",
                   "proxy::slow_body", "proxy::upstream", "server::tls",
                   "server::proxy_protocol", "proxy::origin_tls"]),
        ("services", ["admin", "proxy"]),
        ("server", ["server", "server::accept"]),
    ],
}


def modules(root):
    """Module path -> file, for every .rs file under root."""
    mods = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            parts = os.path.relpath(os.path.join(d, f), root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            mods["::".join(parts)] = os.path.join(d, f)
    return mods


def code_of(path):
    src = open(path, encoding="utf-8").read()
    src = re.split(r"#\[cfg\(test\)\]\s*mod tests", src)[0]
    src = re.sub(r"//[^\n]*", "", src)
    return re.sub(r"pub\((crate|super|in [^)]*)\)", "pub", src)


def graph(root):
    mods = modules(root)

    def resolve(path):
        segs = path.split("::")
        for i in range(len(segs), 0, -1):
            m = "::".join(segs[:i])
            if m in mods:
                return m
        return None

    edges = {m: set() for m in mods}
    for m, f in mods.items():
        src = code_of(f)
        for mt in re.finditer(r"\b(crate|super|self)((?:::\w+)*)(::\{([^;]*?)\})?", src):
            base, rest, _, group = mt.groups()
            if base == "super":
                prefix = "::".join(m.split("::")[:-1])
            elif base == "self":
                prefix = m
            else:
                prefix = ""
            full = (prefix + rest).lstrip(":")
            cands = [] if group else [full]
            for g in (group or "").split(","):
                g = re.sub(r"[{}]", "", g.strip().split(" ")[0])
                if g and g != "self":
                    cands.append((full + "::" + g).lstrip(":"))
            for c in cands:
                r = resolve(c)
                if r and r != m:
                    edges[m].add(r)
        for mt in re.finditer(r"(?<![:\w])(\w+)::", src):
            child = (m + "::" if m else "") + mt.group(1)
            if child in mods and child != m:
                edges[m].add(child)
    return mods, edges


def loops(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def check():
    problems = []
    for root, layers in LAYERS.items():
        mods, edges = graph(root)
        level = {m: i for i, (_, ms) in enumerate(layers) for m in ms}
        level[""] = len(layers)
        for m in mods:
            if m not in level:
                problems.append(f"{root}: module {m} is in no layer (add it to scripts/module-graph.py)")
        for comp in loops(edges):
            problems.append(f"{root}: import loop: {' '.join(comp)}")
        for m, targets in edges.items():
            for t in targets:
                if m in level and t in level and level[t] > level[m]:
                    problems.append(
                        f"{root}: {m} ({layers[level[m]][0]}) imports {t} ({layers[level[t]][0]}), a higher layer")
        print(f"{root}: {len(mods)} modules, {sum(map(len, edges.values()))} imports checked")
    for p in problems:
        print("module-graph:", p, file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if argv[1:] == ["--check"]:
        return check()
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mods, edges = graph(argv[1])
    if "-v" in argv:
        for m in sorted(edges):
            print(f"{m or '(root)'} -> {', '.join(sorted(edges[m]))}")
    found = loops(edges)
    for comp in found:
        print("LOOP:", " ".join(comp))
    print(f"{len(mods)} modules, {len(found)} loops")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
