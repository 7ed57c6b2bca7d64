"""The library-knowledge table is consistent with the prefilter and the model patterns."""

from __future__ import annotations

import pytest

from mplint import knowledge
from mplint.engine import may_start_processes


def test_every_process_api_is_reachable_only_through_a_prefilter_word() -> None:
    for qualname in knowledge.PROCESS_APIS:
        assert any(word.decode() in qualname for word in knowledge.PREFILTER_WORDS), qualname


def test_prefilter_skips_files_without_process_apis() -> None:
    assert not may_start_processes(b"import torch\nmodel = torch.nn.Linear(2, 2)\n")
    assert may_start_processes(b"from concurrent import futures\n")
    assert may_start_processes("import torch.multiprocessing as mp\n")


@pytest.mark.parametrize(("qualname", "label"), [
    ("torch.nn.Linear", "torch.nn.Module"),
    ("torch.load", "loaded by torch.load"),
    ("tensorflow.keras.models.load_model", "Keras model"),
    ("keras.applications.ResNet50", "Keras model"),
    ("sklearn.ensemble.RandomForestClassifier", "scikit-learn estimator"),
    ("sklearn.model_selection.GridSearchCV", "scikit-learn estimator"),
    ("transformers.AutoModelForCausalLM.from_pretrained", "transformers model"),
    ("onnxruntime.InferenceSession", "onnxruntime.InferenceSession"),
])
def test_model_constructors(qualname: str, label: str) -> None:
    assert knowledge.model_label(qualname) == label


@pytest.mark.parametrize("qualname", [
    "torch.nn.Parameter", "torch.nn.functional.relu", "torch.nn.utils.clip_grad_norm_",
    "sklearn.model_selection.KFold", "sklearn.metrics.accuracy_score",
    "transformers.AutoTokenizer.from_pretrained", "transformers.AutoConfig.from_pretrained",
    "torch.save", "numpy.load",
])
def test_not_models(qualname: str) -> None:
    assert knowledge.model_label(qualname) is None
