#!/usr/bin/env python3
"""Layering check for src/ (the table in docs/ARCHITECTURE.md, "What each layer may import").

Reads every `.rs` file under src/ with its comments and string literals blanked out, collects
the top-level modules it reaches (`crate::x`, `use crate::{x, y::z}` over any number of lines,
`super::…` climbing to the crate root), and checks them against the table below. SQL
(`sqlx::query*`, `query_as`, `query_scalar`, `QueryBuilder`, `raw_sql`) may only appear under
src/db/. No file under src/ is over MAX_LINES lines (issue 9: a module that grows that far has a
second job; split it). Prints each offending line and exits 1; prints `check_layers: ok`
otherwise.

`src/main.rs` reaches the library as `printfarm::…`: it is the top layer and is not checked.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_LINES = 600

WORKERS = {"events", "webhooks", "commands", "telemetry"}
LEAVES = {
    "audit", "auth", "config", "embedded_postgres", "error", "ids", "list", "logging", "mail",
    "mqtt", "net", "rate_limit", "redact", "wire", "worker",
}

# Which top-level modules each layer must not reach. A file's layer is its top-level module.
FORBIDDEN = {
    "app": {"http"},  # except app/router.rs, the router assembly (below)
    "middleware": {"http"},
    # The simulator drives a farm over the public API and MQTT; it names printers' MQTT logins
    # as `domain::mqtt_access` does.
    "simulator": {"http", "app", "middleware", "db"} | WORKERS,
    "domain": {"http", "app", "middleware", "simulator"} | WORKERS,
    "db": {"http", "app", "middleware", "simulator", "domain", "auth", "audit", "mail", "config"}
    | WORKERS,
}
for worker in WORKERS:
    FORBIDDEN[worker] = {"http", "app", "middleware", "simulator"}
for leaf in LEAVES:
    FORBIDDEN[leaf] = {"http", "app", "middleware", "simulator", "domain"} | WORKERS

# Imports the table allows by name, each with the reason docs/ARCHITECTURE.md gives.
ALLOWED = {
    ("app/router.rs", "http"),  # the router assembly mounts the handlers
    # `Config` holds the broker address and the webhook SSRF policy it parses (a known
    # exception, listed in docs/ARCHITECTURE.md).
    ("config.rs", "webhooks"),
}

SQL = re.compile(
    r"\bsqlx\s*::\s*(query\w*|raw_sql|QueryBuilder)\b"
    r"|\b(query_as\w*|query_scalar\w*|QueryBuilder|raw_sql)\b"
)


def blank_comments_and_strings(text: str) -> str:
    """The text with comments and string/char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(chunk: str) -> str:
        return "".join("\n" if c == "\n" else " " for c in chunk)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(blank(text[i:end]))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = '"' + m.group(1)
            end = text.find(close, i + m.end())
            end = n if end < 0 else end + len(close)
            out.append(blank(text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            out.append(blank(m.group(0)))
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def group_heads(code: str, start: int) -> list[tuple[str, int]]:
    """The first path segment of each item in the `{…}` group opening at `start`."""
    heads, depth, expect, i = [], 0, True, start
    while i < len(code):
        c = code[i]
        if c == "{":
            depth += 1
            expect = depth == 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                break
        elif c == "," and depth == 1:
            expect = True
        elif expect and depth == 1 and (m := re.match(r"[A-Za-z_]\w*", code[i:])):
            heads.append((m.group(0), i))
            expect = False
            i += m.end()
            continue
        i += 1
    return heads


def module_path(file: Path) -> list[str]:
    parts = list(file.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return parts


def inline_modules(code: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the bodies of `mod name { … }` blocks in `code`."""
    spans = []
    for m in re.finditer(r"\bmod\s+[A-Za-z_]\w*\s*\{", code):
        depth, i = 0, m.end() - 1
        while i < len(code):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            if depth == 0:
                break
            i += 1
        spans.append((m.end(), i))
    return spans


def reached_modules(file: Path, code: str):
    """(top-level module, offset) for every path in `code` that starts at the crate root:
    `crate::…`, or enough `super::` to climb out of the file's own top-level module (counting
    the inline `mod { … }` blocks the path stands in)."""
    own = module_path(file)
    spans = inline_modules(code)
    for m in re.finditer(r"\b(crate|super(?:\s*::\s*super)*)\s*::\s*", code):
        if m.start() > 0 and code[m.start() - 1] == ":":
            continue  # the tail of a longer path
        depth = len(own) + sum(1 for start, end in spans if start <= m.start() < end)
        if m.group(1) != "crate" and depth > m.group(1).count("super"):
            continue  # still inside the file's own top-level module
        rest = code[m.end():]
        if rest.startswith("{"):
            for head, offset in group_heads(code, m.end()):
                if head not in ("self", "super", "crate"):
                    yield head, offset
        elif seg := re.match(r"[A-Za-z_]\w*", rest):
            yield seg.group(0), m.start()


def main() -> int:
    problems = []
    for file in sorted(SRC.rglob("*.rs")):
        rel = file.relative_to(SRC).as_posix()
        text = file.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES:
            problems.append(f"src/{rel} has {lines} lines, over {MAX_LINES}: split it")
        if rel in ("main.rs", "lib.rs"):
            continue
        code = blank_comments_and_strings(text)

        def line_of(offset: int) -> str:
            number = code.count("\n", 0, offset) + 1
            return f"src/{rel}:{number}: {text.splitlines()[number - 1].strip()}"

        layer = module_path(file)[0]
        forbidden = FORBIDDEN.get(layer, set())
        for module, offset in reached_modules(file, code):
            if module in forbidden and (rel, module) not in ALLOWED:
                problems.append(f"{layer} must not import {module}: {line_of(offset)}")
        if layer != "db":
            for m in SQL.finditer(code):
                problems.append(f"SQL belongs in src/db/: {line_of(m.start())}")
    if problems:
        print("check_layers: the layering in docs/ARCHITECTURE.md, or a file's size, is broken",
              file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 1
    print("check_layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
