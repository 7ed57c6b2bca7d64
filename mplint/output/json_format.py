"""A JSON list of finding objects (documented in the README)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mplint.findings import Finding


def render(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"
