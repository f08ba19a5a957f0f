"""User-space instructions per round trip, from a callgrind dump of the server.

usage: python3 bench/callgrind_rt.py CALLGRIND_OUT MARKER_FUNCTION [TOP]

MARKER_FUNCTION is called once per round trip (the echo: sioc__sio_decoder_add_text); the
instructions executed (Ir) in the dump are divided by its calls, in total, by object (sioc,
libc, libuv, ...) and for the TOP functions (self cost, default 25). Instructions, unlike time,
do not follow the host's load: this compares two binaries on a shared machine.
"""
import collections
import re
import sys


def main(path, marker, top):
    names = {"fn": {}, "ob": {}}

    def name(kind, text):
        # Name compression: "(12) name" defines id 12, a later "(12)" refers to it.
        match = re.match(r"\((\d+)\)(?: (.*))?$", text)
        if match is None:
            return text
        if match.group(2) is not None:
            names[kind][match.group(1)] = match.group(2)
        return names[kind].get(match.group(1), "?")

    by_object = collections.Counter()
    by_function = collections.Counter()
    obj = function = called = None
    calls = 0
    skip_next_cost = False
    with open(path) as lines:
        for line in lines:
            if line.startswith("ob="):
                obj = name("ob", line[3:].strip()).rsplit("/", 1)[-1]
            elif line.startswith("fn="):
                function = name("fn", line[3:].strip())
            elif line.startswith("cob="):
                name("ob", line[4:].strip())
            elif line.startswith("cfn="):
                called = name("fn", line[4:].strip())
            elif line.startswith("calls="):
                if called == marker:
                    calls += int(line[6:].split()[0])
                skip_next_cost = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    by_object[obj] += int(fields[1])
                    by_function[(obj, function)] += int(fields[1])
    if calls == 0:
        sys.exit("no call to %s in %s" % (marker, path))
    total = sum(by_object.values())
    print("round trips %d, instructions per round trip %.0f" % (calls, total / calls))
    for obj, count in by_object.most_common():
        print("  %-28s %7.0f  %5.1f %%" % (obj, count / calls, 100.0 * count / total))
    print("functions (self):")
    for (obj, function), count in by_function.most_common(top):
        print("  %-20s %-44s %6.0f" % (obj, function, count / calls))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 25)
