#!/usr/bin/env python3
"""Import cycles between the files of src/: each file is a node, an arrow for every
`crate::…`, `super::…` or `self::…` path it names (in `use` lines and in code) that resolves to
another file's module. Prints each strongly connected group of two or more files (a cycle) and
exits 1 if there is one; `--all` also prints every arrow.

Usage: scripts/import-cycles.py [--all] [SRC_DIR]   (default: src)
"""
import os, re, sys

args = [a for a in sys.argv[1:] if not a.startswith('--')]
show_all = '--all' in sys.argv
src = args[0] if args else os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'src')

# module path (tuple) -> file
modules = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith('.rs'):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src)[:-3].split(os.sep)
        if rel[-1] in ('mod', 'lib', 'main'):
            rel = rel[:-1]
        if rel and rel[0] in ('bin',):
            continue
        modules[tuple(rel)] = path

def resolve(parts):
    """The longest module prefix of `parts` that is a file."""
    for n in range(len(parts), -1, -1):
        if tuple(parts[:n]) in modules:
            return tuple(parts[:n])
    return None

def strip_comments(text):
    text = re.sub(r'//[^\n]*', '', text)
    return re.sub(r'/\*.*?\*/', '', text, flags=re.S)

path_re = re.compile(r'\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)')
group_re = re.compile(r'\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\};', re.S)
edges = {m: set() for m in modules}
for mod, path in modules.items():
    text = strip_comments(open(path, encoding='utf-8').read())
    # main.rs and its commands are the binary: `crate` there is the binary, not the library.
    if path.endswith('main.rs') or os.sep + 'commands' + os.sep in path:
        continue
    is_dir_mod = path.endswith('mod.rs') or path.endswith('lib.rs')
    def base(head):
        if head == 'crate':
            return []
        here = list(mod) if is_dir_mod else list(mod[:-1]) + [mod[-1]]
        if head == 'self':
            return here
        return here[:-1]  # super
    found = []
    for m in group_re.finditer(text):
        prefix = base(m.group(1)) + [p for p in m.group(2).split('::') if p]
        for item in re.split(r',', m.group(3)):
            first = item.strip().split('::')[0].split(' ')[0].strip('{} ')
            if first and first != 'self':
                found.append(prefix + [first])
            else:
                found.append(prefix)
    for m in path_re.finditer(text):
        found.append(base(m.group(1)) + [p for p in m.group(2).split('::') if p])
    for parts in found:
        target = resolve(parts)
        # A parent module file only declares its children: arrows to the children are
        # structure, not imports.
        if target and target != mod and target[:len(mod)] != mod:
            edges[mod].add(target)

# Tarjan's strongly connected components
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        sccs.append(comp)
for v in modules:
    if v not in index:
        visit(v)
name = lambda m: os.path.relpath(modules[m], os.path.dirname(src))
if show_all:
    for m in sorted(edges):
        for t in sorted(edges[m]):
            print(f'{name(m)} -> {name(t)}')
cycles = [sorted(c) for c in sccs if len(c) > 1]
for c in sorted(cycles, key=len, reverse=True):
    print(f'cycle of {len(c)} files:')
    for m in c:
        inside = sorted(name(t) for t in edges[m] if t in c)
        print(f'  {name(m)} -> {", ".join(inside)}')
print(f'{len(modules)} files, {sum(len(e) for e in edges.values())} arrows, {len(cycles)} cycles')
sys.exit(1 if cycles else 0)
