"""``mplint verify`` runs real scripts in real child processes (torch and TensorFlow included)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, ROOT, requires, run, write

from mplint.verify.classify import deprecation_warnings
from mplint.verify.compare import normalise

pytestmark = [pytest.mark.slow, requires("torch", "tensorflow")]

MANIFEST = FIXTURES / "pairs" / "manifest.toml"


def _alive_running(path: Path) -> list[int]:
    """Processes whose command line mentions ``path``: none may outlive a verify run."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(path).encode() in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def suite() -> dict[str, Any]:
    """The whole fixture suite, verified once (two scripts at a time)."""
    result = run("verify", "-j", "2", "--format", "json", "--manifest", str(MANIFEST), cwd=ROOT)
    pairs = {p["name"]: p for p in json.loads(result.stdout)}
    pairs["_exit"] = result.returncode  # type: ignore[assignment]
    return pairs


def _runs(pair: dict[str, Any], which: str) -> dict[str, dict[str, Any]]:
    name = Path(pair[which]).name
    return {r["method"]: r for r in pair["runs"] if Path(r["script"]).name == name}


def test_every_pair_does_what_the_manifest_says(suite: dict[str, Any]) -> None:
    manifest = tomllib.loads(MANIFEST.read_text())["pair"]
    failing = {name: pair["problems"] for name, pair in suite.items()
               if name != "_exit" and pair["status"] == "fail"}
    assert suite["_exit"] == 0, failing
    for entry in manifest:
        pair = suite[entry["name"]]
        if "cuda" in entry.get("requires", []) and pair["status"] == "skip":
            continue  # proved on a GPU machine; CI has none
        assert pair["status"] == "pass", (entry["name"], pair["problems"])
        broken, fixed = _runs(pair, "broken"), _runs(pair, "fixed")
        for method, want in entry["broken-results"].items():
            status, _, text = want.partition(":")
            got = broken[method]
            assert got["status"] == status.strip(), (entry["name"], method)
            assert text.strip() in f"{got['message']}\n{got['stderr']}", (entry["name"], method)
        assert {m: r["status"] for m, r in fixed.items()} == {
            "spawn": "ok", "forkserver": "ok", "fork": "ok"}, entry["name"]
        if broken.get("fork", {}).get("status") == "ok":
            for r in fixed.values():
                assert normalise(r["stdout"]) == normalise(broken["fork"]["stdout"])
                assert normalise(r["stdout"])  # something was printed and compared


def test_failures_are_mapped_to_the_rules_that_predict_them(suite: dict[str, Any]) -> None:
    def rules(name: str, method: str) -> list[str]:
        return _runs(suite[name], "broken")[method]["rules"]

    assert rules("unguarded-pool", "spawn") == ["MPL101"]
    # the child's message in whole sentences, as the interpreter printed it
    assert _runs(suite["unguarded-pool"], "broken")["spawn"]["message"] == (
        "An attempt has been made to start a new process before the current process has "
        "finished its bootstrapping phase.")
    assert rules("module-level-start-method", "forkserver") == ["MPL104"]
    assert rules("lambda-task", "fork") == ["MPL203"]
    assert rules("seed-model-in-starmap", "spawn") == ["MPL205"]
    assert rules("join-before-drain", "spawn") == ["MPL303"]
    assert rules("context-mismatch", "fork") == ["MPL206"]
    # notebooks, run in a kernel: the workers cannot find what a cell defined
    assert rules("notebook-defined-task", "spawn") == ["MPL207"]
    assert rules("notebook-defined-dataset", "forkserver") == ["MPL207"]
    queue = _runs(suite["seed-grad-tensor-on-queue"], "broken")["spawn"]
    # from Python 3.13 the child's feeder thread prints the refused tensor, which MPL205 predicts
    assert queue["rules"] in ([], ["MPL205"]) and "Queue.get()" in queue["hint"]


def test_the_start_method_really_used_is_reported(suite: dict[str, Any]) -> None:
    broken = _runs(suite["module-level-start-method"], "broken")
    assert broken["fork"]["profile"]["methods_used"] == ["spawn"]  # the script forces spawn
    unguarded = _runs(suite["unguarded-pool"], "broken")
    assert unguarded["fork"]["profile"]["methods_used"] == ["fork"]
    assert unguarded["forkserver"]["profile"]["methods_used"] == ["forkserver"]


def test_profile_shows_per_task_loading_and_the_load_per_worker_fix(suite: dict[str, Any]) -> None:
    broken = _runs(suite["per-task-load"], "broken")
    fixed = _runs(suite["per-task-load"], "fixed")
    for method in ("spawn", "forkserver", "fork"):
        assert broken[method]["profile"]["loads_in_workers"]["torch.load"] == 8  # once per item
        # once per worker process that started before the 8 items were done (1 or 2 of them)
        loads = fixed[method]["profile"]["loads_in_workers"]["torch.load"]
        assert loads == fixed[method]["profile"]["worker_processes_loading"]["torch.load"]
        assert 1 <= loads <= 2


def test_mplints_own_fix_loads_once_per_worker_and_prints_the_same(
        suite: dict[str, Any]) -> None:
    """Each load-per-worker pair's broken script, fixed by ``mplint --fix --unsafe-fixes``:
    it runs under every start method, no worker loads or builds a model twice, and it prints
    what the original prints under fork."""
    autofixed = [e["name"] for e in tomllib.loads(MANIFEST.read_text())["pair"]
                 if e.get("autofix")]
    assert sorted(autofixed) == ["keras-model-submitted", "per-task-load",
                                 "seed-model-in-starmap"]
    for name in autofixed:
        pair = suite[name]
        runs = {r["method"]: r for r in pair["runs"]
                if Path(r["script"]).name == f"{name}.autofixed.py"}
        assert {m: r["status"] for m, r in runs.items()} == {
            "spawn": "ok", "forkserver": "ok", "fork": "ok"}, name
        for method, r in runs.items():
            most = r["profile"]["most_in_one_worker"]
            assert most and max(most.values()) == 1, (name, method, most)
        original = _runs(pair, "broken")["fork"]
        if original["status"] == "ok":
            for r in runs.values():
                assert normalise(r["stdout"]) == normalise(original["stdout"])
    # the broken per-task script loads once per item, the fixed ones once per worker
    broken = _runs(suite["per-task-load"], "broken")["spawn"]["profile"]
    assert broken["loads_in_workers"] == {"torch.load": 8, "torch.nn.modules.linear.Linear": 8}


def test_profile_shows_the_model_pickled_with_every_task(suite: dict[str, Any]) -> None:
    broken = _runs(suite["keras-model-submitted"], "broken")["spawn"]["profile"]["sent"]
    fixed = _runs(suite["keras-model-submitted"], "fixed")["spawn"]["profile"]["sent"]
    assert broken["largest"] > 10 * fixed["largest"]
    assert broken["bytes"] > 3 * fixed["bytes"]


def test_a_hang_is_cut_at_its_time_limit_and_leaves_no_process(suite: dict[str, Any]) -> None:
    runs = _runs(suite["join-before-drain"], "broken")
    for verdict in runs.values():
        assert verdict["status"] == "hang"
        assert 8 <= verdict["wall"] <= 8 + 5
        assert verdict["stacks"], "faulthandler stacks of the stuck processes"
    assert _alive_running(FIXTURES / "pairs") == []


def test_bad_input_gets_a_clear_result(tmp_path: Path) -> None:
    write(tmp_path, "broken_syntax.py", "def f(:\n")
    write(tmp_path, "exits.py", "import sys\nprint('bye')\nsys.exit(3)\n")
    result = run("verify", "--start-method", "spawn", "--format", "json", "missing.py",
                 "broken_syntax.py", "exits.py", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    runs = {r["script"]: r for r in json.loads(result.stdout)["runs"]}
    assert (runs["missing.py"]["status"], runs["missing.py"]["message"]) == (
        "error", "no such file")
    assert (runs["broken_syntax.py"]["status"], runs["broken_syntax.py"]["message"]) == (
        "error", "syntax error: invalid syntax (line 1)")
    exits = runs["exits.py"]
    assert (exits["status"], exits["exit_code"], exits["message"]) == ("crash", 3, "exit code 3")
    assert exits["stdout"] == "bye\n"


def test_a_grandchild_that_outlives_the_script_is_reported_and_killed(tmp_path: Path) -> None:
    script = write(tmp_path, "orphan.py", """\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
print("parent done")
""")
    result = run("verify", "--start-method", "spawn", "--format", "json", str(script),
                 cwd=tmp_path)
    (verdict,) = json.loads(result.stdout)["runs"]
    assert (verdict["status"], verdict["leftovers"]) == ("ok", 1)
    assert _alive_running(script) == []


def test_a_script_that_chooses_its_start_method_still_works(tmp_path: Path) -> None:
    script = write(tmp_path, "chooser.py", """\
import multiprocessing as mp

def hello(n):
    return n + 1

if __name__ == "__main__":
    print("default before:", mp.get_start_method(allow_none=True))
    mp.set_start_method("spawn")
    with mp.Pool(1) as pool:
        print(pool.map(hello, [1]))
""")
    plain = write(tmp_path, "plain.py", """\
import multiprocessing as mp
if __name__ == "__main__":
    print(mp.get_start_method())
""")
    result = run("verify", "--start-method", "forkserver,fork", "--format", "json",
                 str(script), str(plain), cwd=tmp_path)
    runs = json.loads(result.stdout)["runs"]
    assert result.returncode == 0
    chooser = [r for r in runs if r["script"].endswith("chooser.py")]
    assert [r["stdout"] for r in chooser] == ["default before: None\n[2]\n"] * 2
    assert [r["profile"]["methods_used"] for r in chooser] == [["spawn"], ["spawn"]]
    assert [r["stdout"] for r in runs if r["script"].endswith("plain.py")] == [
        "forkserver\n", "fork\n"]


def test_compare_mode(tmp_path: Path) -> None:
    original = write(tmp_path, "original.py", """\
import multiprocessing as mp
def square(x):
    return x * x
with mp.Pool(2) as pool:
    print(pool.map(square, range(4)), "took 0.31s at", hex(id(pool)))
""")
    fixed = write(tmp_path, "fixed.py", """\
import multiprocessing as mp
def square(x):
    return x * x
if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(pool.map(square, range(4)), "took 1.2s at", hex(id(pool)))
""")
    wrong = write(tmp_path, "wrong.py", fixed.read_text().replace("x * x", "x + x"))
    same = run("verify", "--compare", str(original), str(fixed), cwd=tmp_path)
    assert same.returncode == 0, same.stdout
    assert same.stdout.splitlines()[-1] == (
        f"outputs match: 2 runs printed what {original} prints under fork")
    different = run("verify", "--compare", str(original), str(wrong), cwd=tmp_path)
    assert different.returncode == 1
    assert "-[0, 1, 4, 9] took <time> at 0x?" in different.stdout
    assert "+[0, 2, 4, 6] took <time> at 0x?" in different.stdout


def test_normalisation_is_what_the_docs_say() -> None:
    text = "at 0x7f3a12 pid 4242 done in 12.5 ms  \n\n"
    assert normalise(text) == "at 0x? pid <n> done in <time>"
    assert normalise("took 3s, pid=17") == "took <time>, pid=<n>"


def test_deprecation_warnings_are_shown(tmp_path: Path) -> None:
    script = write(tmp_path, "warns.py", """\
import warnings

warnings.warn_explicit("old api", DeprecationWarning, "lib.py", 1, module="lib")
""")
    result = run("verify", "--start-method", "spawn", "--format", "json", str(script),
                 cwd=tmp_path)
    (verdict,) = json.loads(result.stdout)["runs"]
    assert verdict["warnings"] == ["lib.py:1: DeprecationWarning: old api"]


def test_warnings_of_the_frozen_import_machinery_are_left_out() -> None:
    stderr = ("<frozen importlib._bootstrap>:744: DeprecationWarning: BuiltinImporter."
              "module_repr() is deprecated\nlib.py:1: DeprecationWarning: old api\n")
    assert deprecation_warnings(stderr) == ["lib.py:1: DeprecationWarning: old api"]


def test_linting_never_loads_the_verifier() -> None:
    probe = ("import sys, mplint; mplint.lint_source('import multiprocessing\\n'); "
             "print(any(m.startswith('mplint.verify') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


SLEEPING_CHILD = """\
import multiprocessing as mp
import time


def sleeper():
    time.sleep(300)


if __name__ == "__main__":
    child = mp.Process(target=sleeper)
    child.start()
    child.join()
"""


@pytest.mark.parametrize(("signal_name", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_an_interrupted_verify_stops_every_script_it_started(tmp_path: Path, signal_name: str,
                                                             status: int) -> None:
    import signal
    import time

    from conftest import tool

    script = write(tmp_path, "sleeps.py", SLEEPING_CHILD)
    proc = subprocess.Popen(
        [tool("mplint"), "verify", "--timeout", "250", "--start-method", "spawn", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while len(_alive_running(script)) < 2 and time.monotonic() < deadline:  # parent + child
        time.sleep(0.2)
    assert len(_alive_running(script)) >= 2
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (status, "mplint verify: interrupted; stopped 1 running "
                                              "script(s)\n")
    time.sleep(1)
    assert _alive_running(script) == []


def test_a_parent_joining_a_busy_child_without_a_queue_is_not_join_before_drain(
        tmp_path: Path) -> None:
    script = write(tmp_path, "sleeps.py", SLEEPING_CHILD)
    result = run("verify", "--timeout", "8", "--start-method", "spawn", "--format", "json",
                 str(script))
    [verdict] = json.loads(result.stdout)["runs"]
    assert (verdict["status"], verdict["rules"]) == ("hang", [])
    assert verdict["hint"] == ("the parent is blocked in Process.join() on a child that is still "
                               "working or waiting: nothing it put on a queue is holding it")


DETACHED_DAEMON = """\
import subprocess
import sys

if __name__ == "__main__":
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)  # daemon-{token}"],
                     env={{}}, start_new_session=True)
    print("started")
"""


def test_a_daemon_that_leaves_the_session_and_its_environment_is_counted_and_killed(
        tmp_path: Path) -> None:
    import uuid

    token = uuid.uuid4().hex
    script = write(tmp_path, "daemon.py", DETACHED_DAEMON.format(token=token))
    result = run("verify", "--start-method", "spawn", "--format", "json", str(script))
    [verdict] = json.loads(result.stdout)["runs"]
    assert (verdict["status"], verdict["leftovers"]) == ("ok", 1)
    assert _alive_running(Path(f"daemon-{token}")) == []

