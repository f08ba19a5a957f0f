"""Heap bytes per connection by allocation site, from `ms_print` output of the peak snapshot.

usage: python3 bench/massif_sites.py MASSIF_PRINT.txt CONNECTIONS [SNAPSHOT]
(SNAPSHOT: the number of a detailed snapshot other than the peak)

Each allocation tree path is charged to its first frame in sioc's own code (file.c:line, not a
library), so jansson's or libc's internals count where sioc asked for them.
"""
import re
import sys


def peak_tree(lines, wanted=None):
    """The lines of the detailed tree of the peak snapshot, or of the last detailed one when
    none is the peak (a snapshot taken on demand: vgdb detailed_snapshot)."""
    header = next(l for l in lines if "Detailed snapshots:" in l)
    found = re.search(r"(\d+) \(peak\)", header)
    peak = found.group(1) if found else re.findall(r"\d+", header)[-1]
    if wanted is not None:
        peak = wanted
    # The snapshot's row of the table (n, time, total...), not the graph's axis ("   0 +---").
    start = next(i for i, l in enumerate(lines) if re.match(r"^ +%s +[\d,]+ +[\d,]+" % peak, l))
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
    for line in peak_tree(lines, sys.argv[3] if len(sys.argv) > 3 else None):
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
    text = "\n".join(lines)
    which = ("snapshot %s" % sys.argv[3] if len(sys.argv) > 3
             else "the peak" if "(peak)" in text else "the last detailed snapshot")
    print("heap at %s, per connection, by first sioc frame (sites over the threshold):" % which)
    for key, size in sorted(sites.items(), key=lambda item: -item[1]):
        print("%8.0f B  %s" % (size / connections, key))
    print("%8.0f B  in all" % (total / connections))


if __name__ == "__main__":
    main()
