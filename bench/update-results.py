#!/usr/bin/env python3
"""Replaces one named section of bench/RESULTS.md, leaving the others alone.

Each bench script owns one section, delimited by
    <!-- section: NAME -->  ...  <!-- end: NAME -->
A section that is not there yet is appended at the end.

    bench/update-results.py NAME FILE_WITH_MARKDOWN [RESULTS.md]
    ... | bench/update-results.py NAME - [RESULTS.md]
"""
import os
import re
import sys


def main() -> int:
    if len(sys.argv) not in (3, 4) or not re.fullmatch(r"[a-z0-9-]+", sys.argv[1]):
        sys.stderr.write(__doc__)
        return 2
    name, src = sys.argv[1], sys.argv[2]
    results = sys.argv[3] if len(sys.argv) == 4 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
    body = sys.stdin.read() if src == "-" else open(src, encoding="utf-8").read()
    block = f"<!-- section: {name} -->\n{body.strip()}\n<!-- end: {name} -->"
    text = open(results, encoding="utf-8").read() if os.path.exists(results) else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- section: {re.escape(name)} -->.*?<!-- end: {re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = results + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
