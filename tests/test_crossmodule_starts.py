"""Processes started through functions, constructors and methods of other modules of the tree."""

from __future__ import annotations

from pathlib import Path

from conftest import cli, report, write

HELPERS = """\
import multiprocessing as mp


def _prepare(model, item):
    return item


def parallel_preprocess(model, items):
    with mp.Pool(4) as pool:
        return pool.starmap(_prepare, [(model, item) for item in items])


def maybe_parallel(items, workers=1):
    if workers == 1:
        return [len(item) for item in items]
    with mp.Pool(workers) as pool:
        return pool.map(len, items)


def spawned(items):
    with mp.get_context("spawn").Pool(2) as pool:
        return pool.map(len, items)


def count(items):
    return len(items)


if __name__ == "__main__":
    with mp.Pool(2) as pool:
        print(pool.map(len, ["a", "b"]))
"""

RUNNERS = """\
import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def act(step):
    return step


class Scorer:
    def __init__(self, workers):
        self.executor = ProcessPoolExecutor(workers)


class Agent:
    def rollout(self, steps):
        workers = [multiprocessing.Process(target=act, args=(s,)) for s in range(steps)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
"""

_TAIL = ("when the module is imported, outside `if __name__ == \"__main__\":`; under spawn or "
         "forkserver every child re-imports the module and fails in its bootstrapping phase")
_DEFAULT = ("uses the platform's default start method (fork on Linux up to Python 3.13, "
            "forkserver from 3.14, spawn on Windows and macOS) in a script that imports torch")


def _lint(tmp_path: Path, script: str, *paths: str) -> list[str]:
    write(tmp_path, "helpers.py", HELPERS)
    write(tmp_path, "runners.py", RUNNERS)
    write(tmp_path, "train.py", script)
    return report(cli("--no-cache", *(paths or ("train.py",)), cwd=tmp_path).stdout)


def test_a_helper_called_at_module_level_starts_sends_and_uses_the_default(
        tmp_path: Path) -> None:
    script = ("import torch\nimport helpers\n\nnet = torch.nn.Linear(2, 2)\n"
              "out = helpers.parallel_preprocess(net, range(8))\n")
    lines = _lint(tmp_path, script)
    assert [line for line in lines if " MPL102 " not in line] == [
        "train.py:5:7: MPL101 [*] `helpers.parallel_preprocess()` starts processes "
        f"(multiprocessing.Pool in `helpers.parallel_preprocess`) {_TAIL}",
        f"train.py:5:7: MPL103 multiprocessing.Pool {_DEFAULT}; choose one, e.g. "
        'multiprocessing.set_start_method("spawn") first thing under the main guard (no '
        "automatic fix: the module has no main guard to choose the start method in (fix "
        "MPL101 first))",
        "train.py:5:7: MPL201 model `net` (torch.nn.Module) is pickled with every task of "
        "Pool.starmap in `helpers.parallel_preprocess`; load it once per worker with "
        "initializer= instead (no automatic fix: the processes are started in another "
        "module)"]
    # the same findings when the whole tree is linted: the helpers module itself has none
    assert _lint(tmp_path, script, ".") == lines


def test_a_constructor_and_a_method_of_another_module(tmp_path: Path) -> None:
    script = ("from runners import Agent, Scorer\n\nscorer = Scorer(2)\nagent = Agent()\n"
              "agent.rollout(3)\n")
    assert _lint(tmp_path, script) == [
        "train.py:3:10: MPL101 [*] `Scorer()` starts processes "
        f"(concurrent.futures.ProcessPoolExecutor in `runners.Scorer.__init__`) {_TAIL} "
        "(1 more start on import after it)"]
    script = "from runners import Agent\n\nagent = Agent()\nagent.rollout(3)\n"
    assert _lint(tmp_path, script) == [
        "train.py:4:1: MPL101 [*] `agent.rollout()` starts processes "
        f"(multiprocessing.Process in `runners.Agent.rollout`) {_TAIL}"]


def test_through_a_function_of_the_script_and_a_chain_of_modules(tmp_path: Path) -> None:
    write(tmp_path, "pipeline.py", "from helpers import parallel_preprocess\n\n\n"
                                   "def run(items):\n    return parallel_preprocess(None, items)\n")
    script = "import pipeline\n\n\ndef main():\n    pipeline.run([1])\n\n\nmain()\n"
    assert _lint(tmp_path, script) == [
        "train.py:8:1: MPL101 [*] `main()` starts processes (multiprocessing.Pool in "
        f"`helpers.parallel_preprocess`) {_TAIL}"]


def test_library_process_apis_in_another_module(tmp_path: Path) -> None:
    write(tmp_path, "textproc.py", "import spacy\nfrom tqdm.contrib.concurrent import process_map"
                                   "\n\n\ndef run(xs):\n    return process_map(len, xs)\n\n\n"
                                   "def parse(texts, nlp):\n"
                                   "    return list(nlp.pipe(texts, n_process=2))\n")
    script = ("import spacy\nimport textproc\n\ntextproc.run(['a'])\n"
              "textproc.parse(['a'], spacy.blank('en'))\n")
    assert _lint(tmp_path, script) == [
        "train.py:4:1: MPL101 [*] `textproc.run()` starts processes "
        f"(tqdm.contrib.concurrent.process_map in `textproc.run`) {_TAIL} "
        "(1 more start on import after it)"]
    script = "import spacy\nimport textproc\n\ntextproc.parse(['a'], spacy.blank('en'))\n"
    assert _lint(tmp_path, script) == [
        "train.py:4:1: MPL101 [*] `textproc.parse()` starts processes "
        f"(spaCy nlp.pipe(n_process=...) in `textproc.parse`) {_TAIL}"]


def test_a_call_under_the_main_guard_is_not_an_import_time_start(tmp_path: Path) -> None:
    script = ("import torch\nimport helpers\n\nif __name__ == \"__main__\":\n"
              "    helpers.parallel_preprocess(\"net.pt\", range(8))\n")
    assert _lint(tmp_path, script) == [
        f"train.py:5:5: MPL103 [*] multiprocessing.Pool {_DEFAULT}; choose one, e.g. "
        'multiprocessing.set_start_method("spawn") first thing under the main guard']


def test_helpers_that_start_nothing_for_sure_give_no_finding(tmp_path: Path) -> None:
    """A function that starts nothing (its module starts processes only under its own main
    guard), one that starts a pool only under a condition, and one with an explicit spawn
    context called under the script's guard."""
    script = ("import torch\nimport helpers\n\nprint(helpers.count([1]))\n"
              "print(helpers.maybe_parallel([\"a\"]))\n\n"
              "if __name__ == \"__main__\":\n    helpers.spawned([\"a\"])\n")
    assert _lint(tmp_path, script) == []


def test_a_caller_that_names_nothing_that_starts_is_not_parsed(tmp_path: Path) -> None:
    """The prefilter: a file naming only ``count`` of the helpers is skipped (its syntax error
    is not seen), one naming ``parallel_preprocess`` is parsed."""
    write(tmp_path, "plain.py", "from helpers import count\nif True\n")
    write(tmp_path, "starts.py", "from helpers import parallel_preprocess\nif True\n")
    lines = _lint(tmp_path, "", "plain.py", "starts.py")
    assert lines == ["starts.py:2:8: MPL000 syntax error: expected ':'"]


def test_the_cache_follows_an_edit_of_the_other_module(tmp_path: Path) -> None:
    """A caller skipped while the helper started nothing is analysed once the helper makes a
    pool, and its finding goes when the pool goes (the cache keys results by the files they
    import)."""
    plain = "def prepare(items):\n    return list(items)\n"
    pooled = ("import multiprocessing\n\n\ndef prepare(items):\n"
              "    with multiprocessing.Pool(2) as pool:\n        return pool.map(len, items)\n")
    write(tmp_path, "prep.py", plain)
    write(tmp_path, "job.py", "from prep import prepare\n\nprepare([\"a\"])\n")
    runs = []
    for helper in (plain, pooled, plain):
        write(tmp_path, "prep.py", helper)
        runs.append([line.split(" ")[:2] for line in report(cli("job.py", cwd=tmp_path).stdout)])
    assert runs == [[], [["job.py:3:1:", "MPL101"]], []]


def test_a_package_of_the_tree_named_like_an_old_library_is_followed(tmp_path: Path) -> None:
    # ``nlp`` was the name of Hugging Face datasets before its 1.0; a project's own ``nlp``
    # package is still read as part of the tree
    (tmp_path / "nlp").mkdir()
    write(tmp_path, "nlp/__init__.py", "")
    write(tmp_path, "nlp/prep.py", "import multiprocessing as mp\n\n\ndef tokenize_all(texts):\n"
                                   "    with mp.Pool(2) as pool:\n"
                                   "        return pool.map(str.split, texts)\n")
    script = "from nlp.prep import tokenize_all\n\ntokens = tokenize_all(['a b'])\n"
    assert _lint(tmp_path, script) == [
        "train.py:3:10: MPL101 [*] `tokenize_all()` starts processes (multiprocessing.Pool in "
        f"`nlp.prep.tokenize_all`) {_TAIL}"]


def test_a_process_subclass_of_another_module_sends_what_its_constructor_gets(
        tmp_path: Path) -> None:
    """Its arguments are not Process's (the second is no target), the child gets the object
    built from them, so choosing spawn for it is no safe fix."""
    write(tmp_path, "workers.py", "import multiprocessing as mp\n\n\nclass Worker(mp.Process):\n"
                                  "    def __init__(self, model, results):\n"
                                  "        super().__init__()\n        self.model = model\n"
                                  "        self.results = results\n\n    def run(self):\n"
                                  "        self.results.put(1)\n")
    script = ("import multiprocessing as mp\nimport torch\nfrom workers import Worker\n\n"
              "if __name__ == \"__main__\":\n    results = mp.Queue()\n"
              "    worker = Worker(torch.nn.Linear(1, 1), results)\n    worker.start()\n"
              "    print(results.get())\n    worker.join()\n")
    assert _lint(tmp_path, script) == [
        "train.py:7:14: MPL103 Worker (multiprocessing.Process subclass) "
        f"{_DEFAULT}; choose one, e.g. multiprocessing.set_start_method(\"spawn\") first "
        "thing under the main guard; under spawn, a torch.nn.Module is sent to Worker "
        "(multiprocessing.Process subclass): under fork each child changes a private copy, "
        "under spawn torch moves its tensors to shared memory and every child changes the same "
        "weights",
        "train.py:7:14: MPL201 a model (torch.nn.Module) is pickled into each child started by "
        "Worker (multiprocessing.Process subclass); build or load it in the child instead (no "
        "automatic fix: the model has no name the fix could rebuild it from)"]
