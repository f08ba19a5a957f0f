"""Heap bytes per connection by allocation site, from `ms_print` output of the peak snapshot.

usage: python3 bench/massif_sites.py MASSIF_PRINT.txt CONNECTIONS

Each allocation tree path is charged to its first frame in sioc's own code (file.c:line, not a
library), so jansson's or libc's internals count where sioc asked for them.
"""
import re
import sys


def peak_tree(lines):
    """The lines of the detailed tree of the peak snapshot."""
    header = next(l for l in lines if "(peak)" in l)
    peak = re.search(r"(\d+) \(peak\)", header).group(1)
    start = next(i for i, l in enumerate(lines) if re.match(r"^ +%s +" % peak, l))
    tree = []
    for line in lines[start + 1:]:
        if line.startswith("-----"):
            break
        tree.append(line)
    return tree


def main():
    lines = open(sys.argv[1]).read().split("\n")
    connections = int(sys.argv[2])
    sites, path = {}, []
    for line in peak_tree(lines):
        match = re.match(r"^([| ]*)->\s*[\d.]+% \(([\d,]+)B\) (.*)$", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        size, frame = int(match.group(2).replace(",", "")), match.group(3)
        path = path[:depth] + [frame]
        own = re.search(r"0x[0-9A-F]+: (\S+) \((\w+\.c:\d+)\)", frame)
        if own and not any(re.search(r"\(\w+\.c:\d+\)", earlier) for earlier in path[:-1]):
            key = "%s (%s)" % (own.group(1), own.group(2))
            sites[key] = sites.get(key, 0) + size
    total = sum(sites.values())
    print("heap at the peak, per connection, by first sioc frame (sites over the threshold):")
    for key, size in sorted(sites.items(), key=lambda item: -item[1]):
        print("%8.0f B  %s" % (size / connections, key))
    print("%8.0f B  in all" % (total / connections))


if __name__ == "__main__":
    main()
