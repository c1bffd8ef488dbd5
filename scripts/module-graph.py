#!/usr/bin/env python3
"""Module import graph of a crate: file-level modules, edges from `crate::`/`super::` paths; prints cycles (SCCs)."""
import os, re, sys
root = sys.argv[1]
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.relpath(os.path.join(d, f), root)[:-3]
            parts = p.split('/')
            if parts[-1] in ('mod', 'lib', 'main'): parts = parts[:-1]
            mods['::'.join(parts)] = os.path.join(d, f)
def resolve(path):
    # longest module prefix
    segs = path.split('::')
    for i in range(len(segs), 0, -1):
        m = '::'.join(segs[:i])
        if m in mods: return m
    return None
edges = {m: set() for m in mods}
for m, f in mods.items():
    src = open(f).read()
    # strip tests module
    src = re.split(r'#\[cfg\(test\)\]\s*mod tests', src)[0]
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'pub\((crate|super|in [^)]*)\)', 'pub', src)
    # expand use groups roughly: crate::a::{b, c::d}
    for mt in re.finditer(r'\b(crate|super)((?:::\w+)*)(::\{([^;]*?)\})?', src):
        base, rest, _, group = mt.groups()
        if base == 'super':
            parent = m.split('::')[:-1]
            # for mod.rs file module m is the dir; super is parent
            prefix = '::'.join(parent)
        else:
            prefix = ''
        full = (prefix + rest).lstrip(':')
        cands = [] if group else [full]
        if group:
            for g in re.split(r',', group):
                g = g.strip().split(' ')[0]
                g = re.sub(r'[{}]', '', g)
                if g and g != 'self': cands.append(full + '::' + g)
        cands = [x for x in cands if x]
        for c in cands:
            r = resolve(c)
            if r is not None and r != m and r != '':
                edges[m].add(r)
for m, f in mods.items():
    src = re.split(r'#\[cfg\(test\)\]\s*mod tests', open(f).read())[0]
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'pub\((crate|super|in [^)]*)\)', 'pub', src)
    for mt in re.finditer(r'(?<![:\w])(\w+)::', src):
        child = (m + '::' if m else '') + mt.group(1)
        if child in mods and child != m: edges[m].add(child)
# tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in mods:
    if v not in idx: sc(v)
loops = [s for s in sccs if len(s) > 1]
if '-v' in sys.argv:
    for m in sorted(edges): print(f"{m or '(root)'} -> {', '.join(sorted(edges[m]))}")
for s in loops: print("LOOP:", ' '.join(sorted(s)))
print(f"{len(mods)} modules, {len(loops)} loops")
