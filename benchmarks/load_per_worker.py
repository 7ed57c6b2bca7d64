"""What the load-per-worker fixes buy: the original script against the one mplint fixes.

    python benchmarks/load_per_worker.py [--items 64] [--workers 2] [--methods spawn,fork]

Two scripts, written here as users write them:

* torch (MPL301): each task builds a network of about 50 MB of weights and loads its checkpoint
  from disk, then scores one item;
* Keras (MPL201): the parent loads a saved model of about 8 MB and submits it with every item
  to a ProcessPoolExecutor, so it is pickled with every task.

Both choose their start method from ``LPW_METHOD`` (so the only fix mplint makes is the
load-per-worker one). Each is copied and fixed with ``mplint --fix --unsafe-fixes``; then the
original and the fixed script run under ``mplint verify`` (real child processes, the
verifier's profile of what was pickled and loaded where). Printed per script and start
method: wall time (the whole script, worker start-up and imports included), bytes pickled by
the parent, how many times the workers together loaded or built the model and the most times
one worker did, whether the outputs agree, and the speed-up as original / fixed wall time.
Keras does not run under fork: TensorFlow is not fork-safe once the parent has used it (the
forked worker never answers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TORCH_SCRIPT = '''\
"""Scores items with a checkpointed network, building and loading it in every task."""
import multiprocessing
import os

import torch

WIDTH = 2048


class Scorer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(),
            torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(),
            torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(),
            torch.nn.Linear(WIDTH, 1))

    def forward(self, x):
        return self.layers(x)


def score(checkpoint, value):
    model = Scorer()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    with torch.no_grad():
        return round(float(model(torch.full((WIDTH,), value / 100))), 3)


if __name__ == "__main__":
    multiprocessing.set_start_method(os.environ["LPW_METHOD"])
    checkpoint = os.environ["LPW_MODEL"]
    items, workers = int(os.environ["LPW_ITEMS"]), int(os.environ["LPW_WORKERS"])
    with multiprocessing.Pool(workers) as pool:
        print(pool.starmap(score, [(checkpoint, float(i)) for i in range(items)]))
'''

KERAS_SCRIPT = '''\
"""Predicts batches in worker processes, sending the model with every batch."""
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import keras
import numpy as np


def predict(model, batch):
    return model.predict(batch, verbose=0).round(3).tolist()


if __name__ == "__main__":
    saved = os.environ["LPW_MODEL"]
    items, workers = int(os.environ["LPW_ITEMS"]), int(os.environ["LPW_WORKERS"])
    model = keras.models.load_model(saved)
    batches = [np.full((1, 512), i / 100, dtype="float32") for i in range(items)]
    context = multiprocessing.get_context(os.environ["LPW_METHOD"])
    with ProcessPoolExecutor(workers, mp_context=context) as ex:
        futures = [ex.submit(predict, model, b) for b in batches]
        print([f.result()[0][0] for f in futures])
'''

MAKE_CHECKPOINT = '''\
import sys, torch
sys.path.insert(0, sys.argv[2])
from torch_scores import Scorer
torch.manual_seed(0)
torch.save(Scorer().state_dict(), sys.argv[1])
'''

MAKE_SAVED_MODEL = '''\
import sys, keras
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(512,)), keras.layers.Dense(2048, activation="relu"),
                          keras.layers.Dense(512, activation="relu"), keras.layers.Dense(1)])
model.save(sys.argv[1])
'''


@dataclass
class Run:
    wall: float
    status: str
    sent: int
    loads: int
    most: int
    stdout: str


def _verify(script: Path, method: str, settings: dict[str, str], timeout: int) -> Run:
    command = [sys.executable, "-m", "mplint", "verify", "--format", "json", "--start-method",
               method, "--timeout", str(timeout), str(script)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, **settings})
    try:
        [verdict] = json.loads(done.stdout)["runs"]
    except (ValueError, KeyError):
        sys.exit(f"load_per_worker: mplint verify failed on {script}: {done.stderr.strip()}")
    profile = verdict.get("profile") or {}
    loads = max((profile.get("loads_in_workers") or {}).values(), default=0)
    most = max((profile.get("most_in_one_worker") or {}).values(), default=0)
    sent = (profile.get("sent") or {}).get("bytes", 0)
    return Run(verdict["wall"], verdict["status"], sent, loads, most, verdict["stdout"])


def _fixed(original: Path) -> Path:
    fixed = original.with_name(original.stem + "_fixed.py")
    fixed.write_bytes(original.read_bytes())
    subprocess.run([sys.executable, "-m", "mplint", "--fix", "--unsafe-fixes", "--no-cache",
                    str(fixed)], capture_output=True, check=False)
    return fixed


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--methods", default="spawn,fork")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--only", choices=("torch", "keras"), help="run one of the two scripts")
    options = parser.parse_args(argv)
    methods = options.methods.split(",")
    folder = Path(tempfile.mkdtemp(prefix="mplint-lpw-"))
    cases = []
    if options.only in (None, "torch"):
        script = folder / "torch_scores.py"
        script.write_text(TORCH_SCRIPT)
        checkpoint = folder / "scorer.pt"
        subprocess.run([sys.executable, "-c", MAKE_CHECKPOINT, str(checkpoint), str(folder)],
                       check=True)
        cases.append(("torch, MPL301", script, str(checkpoint), methods))
    if options.only in (None, "keras"):
        script = folder / "keras_predicts.py"
        script.write_text(KERAS_SCRIPT)
        saved = folder / "predictor.keras"
        subprocess.run([sys.executable, "-c", MAKE_SAVED_MODEL, str(saved)], check=True,
                       capture_output=True)
        cases.append(("Keras, MPL201", script, str(saved),
                      [m for m in methods if m != "fork"]))
    settings = {"LPW_ITEMS": str(options.items), "LPW_WORKERS": str(options.workers)}
    print(f"{options.items} items over {options.workers} workers; scripts and models in {folder}")
    print(f"{'script':15} {'method':7} {'':8} {'wall':>8} {'pickled':>10} {'loads':>6} "
          f"{'most/worker':>11}  output")
    for label, script, model, wanted in cases:
        fixed = _fixed(script)
        for method in wanted:
            given = {**settings, "LPW_MODEL": model, "LPW_METHOD": method}
            before = _verify(script, method, given, options.timeout)
            after = _verify(fixed, method, given, options.timeout)
            same = "same" if before.stdout == after.stdout else "DIFFERENT"
            for name, run in (("original", before), ("fixed", after)):
                print(f"{label:15} {method:7} {name:8} {run.wall:7.1f}s {_mb(run.sent):>10} "
                      f"{run.loads:6d} {run.most:11d}  {run.status}"
                      + (f", {same}" if name == "fixed" else ""))
            ratio = before.wall / after.wall if after.wall else float("inf")
            print(f"{label:15} {method:7} speed-up {ratio:.1f}x")
        if "fork" in methods and "fork" not in wanted:
            print(f"{label:15} fork    not run: TensorFlow hangs in a forked worker once the "
                  "parent has used it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
