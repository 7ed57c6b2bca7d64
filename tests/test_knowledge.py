"""The library-knowledge table is consistent with the prefilter and the model patterns."""

from __future__ import annotations

import pytest

from mplint import knowledge
from mplint.prefilter import scan


def test_every_process_api_is_reachable_only_through_a_prefilter_word() -> None:
    for qualname, kind in knowledge.PROCESS_APIS.items():
        groups = [starts for word, starts in knowledge.PREFILTER_WORDS.items() if word in qualname]
        assert groups, qualname
        if kind in knowledge.STARTING_KINDS:
            leaf = qualname.rpartition(".")[2]
            assert any(leaf in starts for starts in groups), qualname
    for qualname in ("dask.delayed", *knowledge.RAY_REMOTE):  # joblib's run inside Parallel
        module, _, word = qualname.rpartition(".")
        assert word in knowledge.PREFILTER_WORDS[module]


@pytest.mark.parametrize(("source", "direct"), [
    (b"import torch\nmodel = torch.nn.Linear(2, 2)\n", False),
    (b"import numpy\n# multiprocessing.Pool would be wrong here\n", False),
    (b"import torch\nq = torch.multiprocessing.Queue()\n", False),
    (b"import torch\np = torch.multiprocessing.Process(target=f)\n", True),
    (b"from torch.utils.data import DataLoader\nDataLoader(ds, num_workers=2)\n", True),
    (b"from joblib import Parallel, delayed\nParallel(2)(delayed(f)(x) for x in xs)\n", True),
    (b"import ray\n@ray.remote\ndef f(x):\n    return x\nf.remote(1)\n", True),
    (b"from concurrent import futures\n", False),  # imported, never started
    (b"from concurrent import futures\nfutures.ProcessPoolExecutor()\n", True),
    (b"import torch.multiprocessing as mp\nmp.spawn(f, nprocs=2)\n", True),
    (b"from torch import (\n    nn,\n    multiprocessing,\n)\nmultiprocessing.Pool(2)\n", True),
    (b"import os, \\\n    multiprocessing as m\nm.set_start_method('spawn')\n", True),
    (b"import multiprocessing; ctx = multiprocessing.get_context(); ctx.Process()\n", True),
    (b"import torch.multiprocessing as mp\nfrom torch.distributed import ProcessGroup\n", False),
])
def test_prefilter_reads_process_imports_and_starting_names(source: bytes, direct: bool) -> None:
    assert scan(source).direct is direct


def test_prefilter_lists_the_modules_a_file_may_import_from_its_tree() -> None:
    found = scan(b"import os\nimport numpy as np\nfrom .workers import Worker as W, Other\n"
                 b"import pkg.sub\nfrom .. import (a,\n    b as c)\n")
    assert found.imports == ((1, "workers"), (1, "workers.Worker"), (1, "workers.Other"),
                             (0, "pkg"), (0, "pkg.sub"), (2, "a"), (2, "b"))


@pytest.mark.parametrize(("qualname", "label"), [
    ("torch.nn.Linear", "torch.nn.Module"),
    ("torch.load", "loaded by torch.load"),
    ("tensorflow.keras.models.load_model", "Keras model"),
    ("keras.applications.ResNet50", "Keras model"),
    ("sklearn.ensemble.RandomForestClassifier", "scikit-learn estimator"),
    ("sklearn.model_selection.GridSearchCV", "scikit-learn estimator"),
    ("transformers.AutoModelForCausalLM.from_pretrained", "transformers model"),
    # the catalogue's ``*.from_pretrained``: a tokenizer's tables travel with each task too
    ("transformers.AutoTokenizer.from_pretrained", "transformers tokenizer"),
    ("transformers.CLIPProcessor.from_pretrained", "transformers processor"),
    ("onnxruntime.InferenceSession", "onnxruntime.InferenceSession"),
    ("torchvision.models.resnet18", "torchvision model"),
    ("torchvision.models.detection.fasterrcnn_resnet50_fpn", "torchvision model"),
    ("timm.create_model", "timm model"),
    ("whisper.load_model", "whisper model"),
    ("ultralytics.YOLO", "ultralytics model"),
    ("fastai.vision.all.load_learner", "fastai Learner"),
    ("spacy.load", "spaCy pipeline"),
    ("spacy.blank", "spaCy pipeline"),  # pickled whole with each task, though cheap to build
    ("stanza.Pipeline", "stanza pipeline"),
    ("gensim.models.Word2Vec.load", "gensim model"),
    ("xgboost.XGBClassifier", "xgboost model"),
    ("lightgbm.Booster", "lightgbm model"),
    ("catboost.CatBoostRegressor", "catboost model"),
    ("paddle.nn.Linear", "paddle.nn.Layer"),
    ("mxnet.gluon.nn.Dense", "mxnet gluon Block"),
])
def test_model_constructors(qualname: str, label: str) -> None:
    assert knowledge.model_label(qualname) == label


@pytest.mark.parametrize("qualname", [
    "torch.nn.Parameter", "torch.nn.functional.relu", "torch.nn.utils.clip_grad_norm_",
    "sklearn.model_selection.KFold", "sklearn.metrics.accuracy_score",
    "transformers.AutoConfig.from_pretrained",
    "torch.save", "numpy.load",
    "torchvision.models.ResNet18_Weights", "torchvision.models.list_models",
    "torchvision.models.get_weight", "xgboost.DMatrix", "lightgbm.Dataset",
    "catboost.Pool", "paddle.nn.functional.relu",
])
def test_not_models(qualname: str) -> None:
    assert knowledge.model_label(qualname) is None


def test_every_wider_library_entry_names_where_it_is_documented() -> None:
    for pattern in knowledge.MODEL_FACTORIES:
        if pattern.pattern.partition(".")[0] in {
                "torchvision", "timm", "open_clip", "whisper", "ultralytics", "fastai", "spacy",
                "stanza", "gensim", "xgboost", "lightgbm", "catboost", "paddle", "mxnet"}:
            assert pattern.source.startswith("https://"), pattern.pattern


def test_unfitted_boosting_estimators_are_cheap_and_trained_boosters_are_not() -> None:
    assert knowledge.cheap_to_build("xgboost.XGBClassifier")
    assert knowledge.cheap_to_build("lightgbm.LGBMRegressor")
    assert not knowledge.cheap_to_build("xgboost.train")
    assert not knowledge.cheap_to_build("torchvision.models.resnet18")


def test_empty_pipelines_and_estimator_clones_are_cheap_to_build() -> None:
    assert knowledge.cheap_to_build("spacy.blank")
    assert knowledge.cheap_to_build("sklearn.base.clone")
    assert not knowledge.cheap_to_build("spacy.load")
