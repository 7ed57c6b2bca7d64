"""What crossed the process boundary and what was loaded where, from the per-process events."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Traffic:
    messages: int = 0
    bytes: int = 0
    largest: int = 0

    def add(self, size: int) -> None:
        self.messages += 1
        self.bytes += size
        self.largest = max(self.largest, size)


@dataclass
class Profile:
    """Pickling and model loading of one run; "main" is the script's own process."""

    processes: int = 0
    methods_used: list[str] = field(default_factory=list)
    sent: Traffic = field(default_factory=Traffic)  # pickled by the main process
    returned: Traffic = field(default_factory=Traffic)  # pickled by the other processes
    loads_in_main: dict[str, int] = field(default_factory=dict)
    loads_in_workers: dict[str, int] = field(default_factory=dict)
    worker_processes_loading: dict[str, int] = field(default_factory=dict)
    most_in_one_worker: dict[str, int] = field(default_factory=dict)  # per name, busiest worker

    def loads_per_worker(self) -> int:
        """The most times one worker process loaded or built any one model (0: none did)."""
        return max(self.most_in_one_worker.values(), default=0)


def summarise(lines: list[str], main_pid: int) -> Profile:
    profile = Profile()
    pids: set[int] = set()
    methods: set[str] = set()
    main: Counter[str] = Counter()
    workers: Counter[str] = Counter()
    loaders: dict[str, Counter[int]] = {}
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        pid, kind = event.get("pid"), event.get("kind")
        pids.add(pid)
        if kind == "pickle":
            (profile.sent if pid == main_pid else profile.returned).add(int(event["bytes"]))
        elif kind == "start":
            methods.add(event["method"])
        elif kind in ("load", "build"):
            (main if pid == main_pid else workers)[event["name"]] += 1
            if pid != main_pid:
                loaders.setdefault(event["name"], Counter())[pid] += 1
    profile.processes = len(pids)
    profile.methods_used = sorted(methods)
    profile.loads_in_main = dict(sorted(main.items()))
    profile.loads_in_workers = dict(sorted(workers.items()))
    profile.worker_processes_loading = {name: len(p) for name, p in sorted(loaders.items())}
    profile.most_in_one_worker = {name: max(p.values()) for name, p in sorted(loaders.items())}
    return profile
