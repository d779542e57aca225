"""schemas/asyncapi.json as the official parser (@asyncapi/parser, on Node) reads it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


def test_the_official_asyncapi_parser_reads_the_document_without_errors_or_warnings():
    if shutil.which("node") is None:
        pytest.skip("no node on this machine (Debian's nodejs runs the official parser)")
    if not (NODE_TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.skip("the parser is not installed: `make node-tools` (needs npm) installs it")
    done = subprocess.run(
        ["node", "-e", VALIDATE, str(ROOT / "schemas" / "asyncapi.json")],
        cwd=NODE_TOOLS,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert answer["parsed"], answer
    assert answer["problems"] == []
