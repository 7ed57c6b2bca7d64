"""Other libraries' process APIs (``knowledge.LIBRARY_APIS``): where each starts processes,
what it sends, and the settings that keep everything in the calling process.

Each LEFT_ALONE case says why it must stay silent.
"""

from __future__ import annotations

import textwrap

import pytest

from mplint import knowledge, lint_source
from mplint.prefilter import scan


def findings(source: str) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in lint_source(textwrap.dedent(source).lstrip("\n"))]


def messages(source: str) -> list[str]:
    return [f"{f.line}:{f.code} {f.message}"
            for f in lint_source(textwrap.dedent(source).lstrip("\n"))]


FLAGGED = [
    pytest.param("""
        from nlp import load_dataset
        squad = load_dataset("squad", split="train")
        squad = squad.map(lambda row: row, num_proc=4)
        """, [(2, "MPL102"), (3, "MPL101")], id="datasets-under-its-old-name-nlp"),
    pytest.param("""
        import spacy
        nlp = spacy.load("en_core_web_sm")
        docs = list(nlp.pipe(["a", "b"], n_process=2))
        """, [(2, "MPL102"), (3, "MPL101")], id="spacy-pipe-n-process"),
    pytest.param("""
        import spacy
        nlp = spacy.blank("en")
        docs = list(nlp.pipe(["a", "b"], n_process=-1))
        """, [(3, "MPL101")], id="spacy-blank-pipe-all-cpus"),
    pytest.param("""
        import datasets
        ds = datasets.load_dataset("imdb", split="train")
        ds = ds.map(lambda row: row, num_proc=4)
        """, [(2, "MPL102"), (3, "MPL101")], id="datasets-map-num-proc"),
    pytest.param("""
        from mydata import get_corpus
        corpus = get_corpus()
        corpus = corpus.filter(lambda row: len(row["text"]) > 0, num_proc=8)
        """, [(3, "MPL101")], id="datasets-filter-on-a-dataset-from-another-module"),
    pytest.param("""
        from datasets import load_dataset
        NUM_PROC = 16
        ds = load_dataset("c4", "en", num_proc=NUM_PROC)
        """, [(3, "MPL101"), (3, "MPL102")], id="datasets-load-dataset-num-proc-constant"),
    pytest.param("""
        from tensorflow import keras
        model = keras.Sequential([keras.layers.Dense(1)])
        def batches():
            while True:
                yield 1, 1
        model.fit(batches(), workers=4, use_multiprocessing=True)
        """, [(2, "MPL102"), (6, "MPL101"), (6, "MPL102"), (6, "MPL204")],
        id="keras-fit-generator-workers"),
    pytest.param("""
        from keras.models import Sequential
        model = Sequential()
        model.fit_generator(gen, steps_per_epoch=10, nb_worker=4, pickle_safe=True)
        """, [(2, "MPL102"), (3, "MPL101")], id="keras-1-pickle-safe"),
    pytest.param("""
        import pandas as pd
        from pandarallel import pandarallel
        pandarallel.initialize()
        frame = pd.DataFrame({"a": [1, 2]})
        frame["b"] = frame.parallel_apply(lambda row: row.a * 2, axis=1)
        """, [(5, "MPL101")], id="pandarallel-parallel-apply"),
    pytest.param("""
        from tqdm.contrib.concurrent import process_map
        import torch
        from functools import partial
        def score(model, x):
            return x
        if __name__ == "__main__":
            torch.set_num_threads(1)
            net = torch.nn.Linear(2, 2)
            process_map(partial(score, net), range(8), max_workers=2)
        """, [(9, "MPL201")], id="process-map-partial-model"),
    pytest.param("""
        from tqdm.contrib.concurrent import process_map
        results = process_map(lambda x: x * 2, range(8))
        """, [(2, "MPL101"), (2, "MPL203")], id="process-map-lambda"),
    pytest.param("""
        from pqdm.processes import pqdm
        def double(x):
            return 2 * x
        result = pqdm(range(8), double, n_jobs=2)
        """, [(4, "MPL101")], id="pqdm-processes"),
    pytest.param("""
        from p_tqdm import p_map
        result = p_map(lambda x: x + 1, range(8), num_cpus=4)
        """, [(2, "MPL101")], id="p-tqdm-lambda-travels-by-dill"),
    pytest.param("""
        import multiprocess as mp
        pool = mp.Pool(2)
        squares = pool.map(lambda x: x * x, range(4))
        """, [(2, "MPL101")], id="multiprocess-pool-dill"),
    pytest.param("""
        from pathos.multiprocessing import ProcessingPool as Pool
        pool = Pool(nodes=4)
        squares = pool.map(lambda x: x * x, range(4))
        """, [(2, "MPL101")], id="pathos-processing-pool"),
    pytest.param("""
        from mpire import WorkerPool
        def double(x):
            return 2 * x
        with WorkerPool(n_jobs=4) as pool:
            results = pool.map(double, range(10))
        """, [(5, "MPL101")], id="mpire-starts-with-its-first-map"),
    pytest.param("""
        from gensim.models import LdaMulticore
        from gensim.corpora import Dictionary
        texts = [["a", "b"], ["b", "c"]]
        vocab = Dictionary(texts)
        corpus = [vocab.doc2bow(t) for t in texts]
        lda = LdaMulticore(corpus, id2word=vocab, num_topics=2, workers=2)
        """, [(6, "MPL101")], id="gensim-lda-multicore-trains-in-constructor"),
    pytest.param("""
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer("all-MiniLM-L6-v2")
        pool = model.start_multi_process_pool()
        vectors = model.encode_multi_process(["a", "b"], pool)
        """, [(2, "MPL102"), (3, "MPL101")], id="sentence-transformers-pool"),
    pytest.param("""
        import lightning as L
        from mymodels import Net
        trainer = L.Trainer(strategy="ddp_spawn", devices=2)
        trainer.fit(Net())
        """, [(4, "MPL101")], id="lightning-ddp-spawn-fit"),
    pytest.param("""
        import webdataset as wds
        loader = wds.WebLoader(wds.WebDataset("shards-{000..009}.tar"), num_workers=4)
        for batch in loader:
            print(batch)
        """, [(3, "MPL101")], id="webdataset-webloader-with-workers"),
    pytest.param("""
        from ultralytics import YOLO
        import torch
        model = YOLO("yolov8n.pt")
        model.train(data="coco8.yaml", epochs=3)
        torch.nn.Linear(2, 2).train()
        """, [(3, "MPL102"), (4, "MPL101")],  # a spawned child fails at line 4, before line 5
        id="ultralytics-train-uses-8-loader-workers-by-default"),
    pytest.param("""
        import dask.bag as db
        bag = db.from_sequence(range(10)).map(lambda x: x * 2)
        total = bag.sum().compute(scheduler="processes")
        """, [(3, "MPL101")], id="dask-process-scheduler-method"),
    pytest.param("""
        import dask
        import dask.bag as db
        bag = db.from_sequence(range(10)).map(lambda x: x * 2)
        both = dask.compute(bag, scheduler="processes")
        """, [(4, "MPL101")], id="dask-process-scheduler-function"),
    pytest.param("""
        import easyocr
        from multiprocessing import get_context
        def read(reader, path):
            return reader.readtext(path)
        if __name__ == "__main__":
            reader = easyocr.Reader(["en"])
            with get_context("spawn").Pool(2) as pool:
                pool.starmap(read, [(reader, p) for p in ["a.png", "b.png"]])
        """, [(8, "MPL201")], id="ocr-reader-sent-with-every-task"),
    pytest.param("""
        from datasets import load_dataset
        from transformers import AutoTokenizer
        from multiprocessing import Pool
        NUM_PROC = 4
        def tokenize(batch, name):
            tokenizer = AutoTokenizer.from_pretrained(name)
            return tokenizer(batch["text"])
        def per_item(name):
            return len(AutoTokenizer.from_pretrained(name))
        def prepare(num_proc=NUM_PROC):
            ds = load_dataset("imdb")
            ds = ds.map(tokenize, fn_kwargs={"name": "bert-base-uncased"}, num_proc=num_proc)
            with Pool(2) as pool:
                pool.map(per_item, ["bert-base-uncased", "gpt2"])
            return ds
        """, [(6, "MPL301")], id="tokenizer-loaded-per-batch-with-fn-kwargs-the-same-for-all"),
    *(pytest.param(f"""
        import gymnasium as gym
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv
        {line}
        """, [(4, "MPL101")], id=f"rl-subprocess-vector-envs-lambdas-travel-by-cloudpickle-{i}")
      for i, line in enumerate((
          'envs = SubprocVecEnv([lambda: gym.make("CartPole-v1") for _ in range(4)])',
          'vec = make_vec_env("CartPole-v1", n_envs=4, vec_env_cls=SubprocVecEnv)',
          'more = gym.vector.AsyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)'))),
    pytest.param("""
        from torch_geometric.loader import DataLoader
        from torch_geometric.datasets import TUDataset
        graphs = DataLoader(TUDataset("data", "MUTAG"), batch_size=32, num_workers=2)
        for batch in graphs:
            print(batch)
        """, [(4, "MPL101")], id="torch-geometric-dataloader-with-workers"),
    pytest.param("""
        from multiprocessing import Pool
        from sklearn.datasets import fetch_20newsgroups
        posts = fetch_20newsgroups()
        stopwords = open("stopwords.txt").read().split()
        def count(text):
            return len([w for w in text.split() if w not in stopwords])
        if __name__ == "__main__":
            with Pool(2) as pool:
                print(pool.map(count, posts.data))
        """, [(3, "MPL102"), (4, "MPL102")], id="import-time-dataset-fetch-and-file-read"),
    pytest.param("""
        from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
        args = TrainingArguments("out", dataloader_num_workers=4)
        trainer = Trainer(model=model, args=args)
        trainer.train()
        """, [(2, "MPL102"), (5, "MPL101")], id="hf-trainer-with-loader-workers"),
    pytest.param("""
        import sys
        from trl import SFTConfig, SFTTrainer
        workers = int(sys.argv[1])
        trainer = SFTTrainer("gpt2", SFTConfig("out", dataloader_num_workers=workers))
        trainer.train()
        """, [(5, "MPL101")], id="trl-trainer-with-an-unknown-worker-count"),
    pytest.param("""
        import pandas as pd
        from tsfresh import extract_features
        series = pd.read_csv("series.csv")
        features = extract_features(series, column_id="id", column_sort="time")
        """, [(3, "MPL102"), (4, "MPL101")], id="tsfresh-extraction-uses-a-pool-by-default"),
    pytest.param("""
        from dask.distributed import Client
        client = Client()
        print(client.submit(abs, -1).result())
        """, [(2, "MPL101")], id="dask-client-starts-a-local-cluster"),
    pytest.param("""
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2)
        client = Client(cluster)
        """, [(2, "MPL101")], id="dask-local-cluster"),
]

LEFT_ALONE = [
    pytest.param("""
        import pandas as pd
        from tsfresh import extract_features
        series = pd.read_csv("series.csv")
        features = extract_features(series, column_id="id", n_jobs=0)
        """, id="tsfresh-without-workers"),
    pytest.param("""
        from dask.distributed import Client
        client = Client("tcp://scheduler:8786")
        print(client.submit(abs, -1).result())
        """, id="dask-client-of-a-cluster-that-runs-elsewhere"),
    pytest.param("""
        from dask.distributed import Client
        client = Client(processes=False)
        print(client.submit(abs, -1).result())
        """, id="dask-local-cluster-of-threads"),
    pytest.param("""
        from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
        trainer = Trainer(model=model, args=TrainingArguments("out"))
        trainer.train()
        """, id="hf-trainer-loads-batches-in-the-caller-by-default"),
    pytest.param("""
        from transformers import HfArgumentParser, Trainer, TrainingArguments
        (args,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses()
        trainer = Trainer(model=None, args=args)
        trainer.train()
        """, id="hf-trainer-arguments-from-the-command-line-are-not-seen"),
    pytest.param("""
        import spacy
        nlp = spacy.load("en_core_web_sm")
        docs = list(nlp.pipe(["a", "b"], n_process=1))
        """, id="spacy-one-process-runs-in-the-caller"),
    pytest.param("""
        import spacy
        def main():
            nlp = spacy.load("en_core_web_sm")
            return list(nlp.pipe(["a", "b"], n_process=2))
        if __name__ == "__main__":
            main()
        """, id="spacy-pipe-under-the-guard"),
    pytest.param("""
        from datasets import load_dataset
        def prepare():
            ds = load_dataset("imdb", split="train")
            return ds.map(lambda row: row, num_proc=4)
        """, id="datasets-library-function-nothing-at-import"),
    pytest.param("""
        from datasets import load_dataset
        ds = load_dataset("imdb", split="train")
        ds = ds.map(lambda row: row, batched=True)
        """, id="datasets-map-without-num-proc-runs-in-the-caller"),
    pytest.param("""
        import pandas as pd
        frame = pd.DataFrame({"a": [1, 2]})
        frame["b"] = frame["a"].map(lambda a: a * 2)
        """, id="pandas-map-is-not-a-process-api"),
    pytest.param("""
        from tensorflow import keras
        def train(model, data):
            model.fit(data, epochs=3, workers=4)
        """, id="keras-workers-without-use-multiprocessing-are-threads"),
    pytest.param("""
        from keras.models import Sequential
        model = Sequential()
        model.fit(x, y, use_multiprocessing=False, workers=4)
        """, id="keras-use-multiprocessing-false"),
    pytest.param("""
        from keras.models import Sequential
        def train(model, data, parallel):
            model.fit(data, use_multiprocessing=parallel, workers=4)
        model = Sequential()
        train(model, batches, True)
        """, id="keras-flag-passed-on-counts-only-as-a-literal-true"),
    pytest.param("""
        from gensim.models import Word2Vec
        def train(sentences):
            return Word2Vec(sentences, workers=8)
        """, id="gensim-word2vec-workers-are-threads"),
    pytest.param("""
        from gensim.models import LdaMulticore
        lda = LdaMulticore(num_topics=10, workers=3)
        """, id="gensim-lda-multicore-without-corpus-trains-nothing"),
    pytest.param("""
        import lightning as L
        from mymodels import Net
        trainer = L.Trainer(strategy="ddp", devices=2)
        trainer.fit(Net())
        """, id="lightning-ddp-launches-scripts-not-spawn"),
    pytest.param("""
        from accelerate import notebook_launcher
        def train():
            pass
        notebook_launcher(train, num_processes=2)
        """, id="accelerate-notebook-launcher-forks"),
    pytest.param("""
        from joblib import Parallel, delayed
        from loky import get_reusable_executor
        executor = get_reusable_executor(max_workers=2)
        results = list(executor.map(abs, range(4)))
        """, id="loky-workers-do-not-re-import-main"),
    pytest.param("""
        from p_tqdm import p_map
        def main():
            return p_map(lambda x: x + 1, range(8))
        if __name__ == "__main__":
            main()
        """, id="p-tqdm-lambda-under-guard-pickles-by-dill"),
    pytest.param("""
        from ultralytics import YOLO
        model = YOLO("yolov8n.pt")
        model.train(data="coco8.yaml", workers=0)
        """, id="ultralytics-train-without-workers"),
    pytest.param("""
        import ultralytics
        import torch
        net = torch.nn.Linear(2, 2)
        net.train()
        """, id="a-torch-module-train-is-not-ultralytics"),
    pytest.param("""
        import dask.bag as db
        bag = db.from_sequence(range(10)).map(lambda x: x * 2)
        total = bag.sum().compute()
        """, id="dask-default-scheduler-for-bags-is-processes-only-when-asked-here"),
    pytest.param("""
        from multiprocessing.dummy import Pool
        with Pool(4) as pool:
            print(pool.map(len, ["a", "bb"]))
        """, id="multiprocessing-dummy-pool-is-threads"),
    pytest.param("""
        import gymnasium as gym
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv
        envs = DummyVecEnv([lambda: gym.make("CartPole-v1")])
        vec = make_vec_env("CartPole-v1", n_envs=4)
        forked = SubprocVecEnv([lambda: gym.make("CartPole-v1")], start_method="fork")
        def train():
            return SubprocVecEnv([lambda: gym.make("CartPole-v1")] * 4)
        """, id="rl-vector-envs-in-this-process-forked-or-in-a-function"),
]


@pytest.mark.parametrize(("source", "expected"), FLAGGED)
def test_flagged(source: str, expected: list[tuple[int, str]]) -> None:
    assert sorted(findings(source)) == sorted(expected)


@pytest.mark.parametrize("source", LEFT_ALONE)
def test_left_alone(source: str) -> None:
    assert findings(source) == []


def test_a_worker_count_from_a_parameter_default_constant_is_known() -> None:
    assert messages("""
        from datasets import load_dataset
        NUM_PROC = 4
        def tokenize(batch, name):
            from transformers import AutoTokenizer
            return AutoTokenizer.from_pretrained(name)(batch["text"])
        def prepare(num_proc=NUM_PROC):
            return load_dataset("imdb").map(tokenize, fn_kwargs={"name": "gpt2"},
                                            num_proc=num_proc)
        """) == [
        "5:MPL301 `AutoTokenizer.from_pretrained(...)` loads a tokenizer in `tokenize`, which "
        "Hugging Face datasets .map(num_proc=...) runs once per item: the load is paid for "
        "every item instead of once per worker; load it once per worker through a "
        "functools.cache loader in an importable module (no automatic fix: the library's "
        "workers take no initializer the fix can write)",
    ]


def test_messages_name_the_library_api_and_the_unknown_worker_count() -> None:
    assert messages("""
        import spacy, os
        nlp = spacy.load("en_core_web_sm")
        docs = list(nlp.pipe(texts, n_process=os.cpu_count()))
        """) == [
        "2:MPL102 `spacy.load(...)` loads a model (spaCy pipeline) when the module is imported; "
        "the module starts processes (spaCy nlp.pipe(n_process=...)), and under spawn or "
        "forkserver every child imports it again and repeats this; move it under the main "
        "guard or into a worker initializer (no automatic fix: the module has no plain main "
        "guard to move it into)",
        "3:MPL101 spaCy nlp.pipe(n_process=...) starts processes (when n_process > 1) when the "
        "module is imported, "
        "outside `if __name__ == \"__main__\":`; under spawn or forkserver every child "
        "re-imports the module and fails in its bootstrapping phase",
    ]


def test_the_prefilter_skips_a_keras_script_that_only_trains() -> None:
    source = "from tensorflow import keras\nmodel = keras.Sequential()\nmodel.fit(x, y)\n"
    assert not scan(source.encode()).direct


def test_every_entry_names_its_documentation_and_a_prefilter_word() -> None:
    for api in knowledge.LIBRARY_APIS:
        assert api.doc.startswith("https://"), api.name
        assert api.pickler in ("pickle", "dill", "cloudpickle"), api.name
        assert api.reimports_main or api.pickler == "cloudpickle", api.name
        assert api.methods == "" or api.methods in knowledge.TASK_METHODS, api.name
        for word in api.module_words:
            assert word == knowledge.ANY_MODULE or word in knowledge.PREFILTER_WORDS, api.name


@pytest.mark.parametrize(("source", "expected"), FLAGGED)
def test_the_prefilter_keeps_every_flagged_file(source: str,
                                                expected: list[tuple[int, str]]) -> None:
    assert scan(textwrap.dedent(source).encode()).direct
