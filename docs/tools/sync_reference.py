#!/usr/bin/env python3
"""Refresh the generated parts of docs/reference.md from the regress test `reference`.

Each `### name` entry of docs/reference.md opens with the object's signature block and ends with
an `Example:` block; both are cut from tests/pg_regress/expected/reference.out (part 1 prints
every public function's signature with its COMMENT and every view's columns from the catalog,
part 2 runs one example per object after a `-- example: <name>` line). The prose between them
is written by hand and kept as it is.

After changing a function or view: update tests/pg_regress/sql/reference.sql (a new object needs
an example there), accept its output (`tests/run.sh --accept`), run this script, write the prose
of a new entry, and run `cargo test --lib doc_tests`, which checks that the page documents
exactly the catalog, each signature and example verbatim.

Usage: docs/tools/sync_reference.py        (from anywhere; prints what it changed)
"""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests/pg_regress/expected/reference.out"
PAGE = REPO / "docs/reference.md"
NAME = re.compile(r"^(credit_ledger\.[a-z_]+ \(|credit_[a-z_]+\()")


def catalog(lines):
    """name -> signature block (the COMMENT line, then the signature), from part 1."""
    sigs = {}
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("-- ") and NAME.match(lines[i + 1]):
            name = re.match(r"^[a-z_.]+", lines[i + 1]).group(0)
            block = [lines[i]]
            j = i + 1
            while True:
                line = lines[j]
                block.append(line)
                one_line = j == i + 1 and re.search(r"\) RETURNS [^(]*$", line)
                if one_line or line == ")" or re.match(r"^\) RETURNS [^(]*$", line):
                    break
                j += 1
            sigs[name] = "\n".join(block)
            i = j + 1
        else:
            i += 1
    return sigs


def examples(text):
    """name -> the example's statements and output, from part 2."""
    parts = re.split(r"^-- example: (\S+)\n", text, flags=re.M)
    found = {}
    for k in range(1, len(parts), 2):
        found[parts[k]] = parts[k + 1].split("\n-- the examples left")[0].strip("\n")
    return found


def main():
    text = OUT.read_text()
    sigs, exs = catalog(text.split("\n")), examples(text)
    page = PAGE.read_text()
    head, *entries = page.split("\n### ")
    documented, changed, out = set(), [], [head]
    for entry in entries:
        name = entry.split("\n", 1)[0].strip()
        documented.add(name)
        new = entry
        if name in sigs:
            new = re.sub(r"```sql\n.*?\n```", lambda _m: "```sql\n" + sigs[name] + "\n```", new, count=1, flags=re.S)
        if name in exs:
            new = re.sub(r"(Example:\n\n)```sql\n.*?\n```", lambda m: m.group(1) + "```sql\n" + exs[name] + "\n```",
                         new, count=1, flags=re.S)
        if new != entry:
            changed.append(name)
        out.append(new)
    PAGE.write_text("\n### ".join(out))
    for name in changed:
        print(f"updated: {name}")
    missing = sorted(set(sigs) - documented)
    gone = sorted(documented - set(sigs))
    for name in missing:
        print(f"not documented yet (add a `### {name}` entry): {name}")
    for name in gone:
        print(f"documented but no longer in the catalog (remove the entry): {name}")
    return 1 if missing or gone else 0


if __name__ == "__main__":
    sys.exit(main())
