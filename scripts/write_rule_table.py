"""Regenerate the rule table in README.md from the rules themselves (tests/test_rules.py checks
that it is current)."""

import re
from pathlib import Path

from mplint.rules import markdown_table

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text(encoding="utf-8")
table = re.compile(r"(<!-- rules -->\n).*?(<!-- /rules -->)", re.S)
readme.write_text(table.sub(lambda m: m.group(1) + markdown_table() + m.group(2), text),
                  encoding="utf-8")
