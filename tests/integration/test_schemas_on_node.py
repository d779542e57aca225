"""The published schemas as JavaScript reads them: the official AsyncAPI parser, and ECMA-262
regular expressions (what JSON Schema validators run) against Python's (what ingest runs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
NODE_TOOLS = ROOT / ".cache" / "node"  # `make node-tools` installs the parser there
VALIDATE = """
const { Parser } = require('@asyncapi/parser');
const { readFileSync } = require('node:fs');
new Parser().parse(readFileSync(process.argv[1], 'utf8')).then(({ document, diagnostics }) => {
  const problems = diagnostics.filter((d) => d.severity <= 1);
  console.log(JSON.stringify({
    parsed: document !== undefined,
    problems: problems.map((d) => ({ message: d.message, path: d.path.join('.') })),
  }));
});
"""
# The "u" flag: how Ajv, the validator most JavaScript producers use, compiles "pattern".
MATCH = """
const { patterns, texts } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(patterns.map((p) => texts.map((t) => new RegExp(p, 'u').test(t)))));
"""
# Where Python's and JavaScript's regular expressions part: their white space, dots, $ before
# a final line break, and the line and paragraph separators.
ODD = [chr(c) for c in range(0x20)] + [
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "\xa0",
    "\u1680",
    "\u2000",
    "\u200a",
]
ODD += ["\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", " "]
PLAIN = ["a", "ann@example.com", "+49 170 1234567", "EUR", "DE", "2026-03-01T12:00:00Z"]


def node() -> str:
    if shutil.which("node") is None:
        pytest.skip("no node on this machine (Debian's nodejs runs the official parser)")
    return "node"


def patterns(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["pattern"]} if isinstance(value.get("pattern"), str) else set()
        return found.union(*(patterns(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(patterns(v) for v in value))
    return set()


def test_the_official_asyncapi_parser_reads_the_document_without_errors_or_warnings():
    command = node()
    if not (NODE_TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.skip("the parser is not installed: `make node-tools` (needs npm) installs it")
    done = subprocess.run(
        [command, "-e", VALIDATE, str(SCHEMAS / "asyncapi.json")],
        cwd=NODE_TOOLS,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert answer["parsed"], answer
    assert answer["problems"] == []


def test_every_published_pattern_accepts_in_javascript_exactly_what_it_accepts_in_python():
    command = node()
    published = sorted(
        set().union(*(patterns(json.loads(path.read_text())) for path in SCHEMAS.glob("*.json")))
    )
    texts = [*PLAIN]
    for odd in ODD:
        texts += [odd, f"a{odd}", f"{odd}a", f"a{odd}a"]
        texts += [f"{plain}{odd}" for plain in PLAIN] + [f"{odd}{plain}" for plain in PLAIN]
    done = subprocess.run(
        [command, "-e", MATCH],
        input=json.dumps({"patterns": published, "texts": texts}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    in_javascript = json.loads(done.stdout)

    disagreements = [
        (pattern, text, in_js)
        for pattern, answers in zip(published, in_javascript, strict=True)
        for text, in_js in zip(texts, answers, strict=True)
        if (re.search(pattern, text) is not None) != in_js
    ]
    assert len(published) >= 8
    assert disagreements == []
