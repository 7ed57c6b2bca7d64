"""Verify results as text for people and JSON for tools."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mplint.verify.classify import Verdict
from mplint.verify.manifest import PairResult
from mplint.verify.profile import Profile

_TAIL = 4000  # characters of stdout/stderr kept in JSON


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def describe_profile(profile: Profile) -> str:
    parts = [f"{profile.processes} process{'es' if profile.processes != 1 else ''}"]
    if profile.methods_used:
        parts.append("started with " + "/".join(profile.methods_used))
    sent = profile.sent
    if sent.messages:
        parts.append(f"sent {sent.messages} pickles, {_size(sent.bytes)} "
                     f"(largest {_size(sent.largest)})")
    if profile.returned.messages:
        parts.append(f"returned {profile.returned.messages} pickles, "
                     f"{_size(profile.returned.bytes)}")
    for name in sorted({*profile.loads_in_main, *profile.loads_in_workers}):
        main = profile.loads_in_main.get(name, 0)
        workers = profile.loads_in_workers.get(name, 0)
        where = profile.worker_processes_loading.get(name, 0)
        most = profile.most_in_one_worker.get(name, 0)
        busiest = f" (at most x{most} in one)" if where > 1 else ""
        parts.append(f"{name} x{main} in main, x{workers} in {where} other "
                     f"process{'es' if where != 1 else ''}{busiest}")
    return "; ".join(parts)


def render_verdicts(verdicts: list[Verdict]) -> str:
    out = []
    for v in verdicts:
        head = f"{v.script} [{v.method}] {v.status.upper()}"
        if v.status != "error":
            head += f" in {v.wall:.1f}s"
        if v.where:
            head += f" at {v.where}"
        if v.exception or v.message:
            head += f": {v.exception + ': ' if v.exception else ''}{v.message or ''}"
        if v.rules:
            head += f"  (predicted by {', '.join(v.rules)})"
        out.append(head)
        if v.hint:
            out.append(f"    {v.hint}")
        if v.profile is not None:
            out.append(f"    {describe_profile(v.profile)}")
        if v.leftovers:
            many = "processes were" if v.leftovers > 1 else "process was"
            out.append(f"    {v.leftovers} {many} still running after the script ended: killed")
        out.extend(f"    {w}" for w in v.warnings)
        if v.status == "hang" and v.stacks:
            for pid, stack in sorted(v.stacks.items()):
                out.append(f"    stack of pid {pid}:")
                out.extend(f"      {line}" for line in stack.splitlines()[-12:])
    return "".join(line + "\n" for line in out)


def render_pairs(results: list[PairResult]) -> str:
    out = []
    for result in results:
        rules = ", ".join(result.pair.rules)
        out.append(f"{result.status.upper():4} {result.pair.name} ({rules})")
        out.extend(f"     {line}" for p in result.problems for line in p.splitlines())
    passed = sum(r.status == "pass" for r in results)
    failed = sum(r.status == "fail" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    out.append(f"{passed} passed, {failed} failed, {skipped} skipped")
    return "".join(line + "\n" for line in out)


def verdict_dict(v: Verdict) -> dict[str, Any]:
    data = asdict(v)
    data["stdout"] = v.stdout[-_TAIL:]
    data["stderr"] = v.stderr[-_TAIL:]
    data["stacks"] = {str(pid): text for pid, text in v.stacks.items()}
    return data


def pair_dict(result: PairResult) -> dict[str, Any]:
    return {"name": result.pair.name, "rules": list(result.pair.rules),
            "broken": str(result.pair.broken), "fixed": str(result.pair.fixed),
            "status": result.status, "problems": result.problems,
            "runs": [verdict_dict(v) for v in result.verdicts]}
