"""Library knowledge as data: process APIs, model constructors and loaders, ML frameworks.

Every rule and every analysis step asks this table for what a library's names mean; rules
compare the facts the analysis derives from it (``Model.framework``, ``WorkSite.runner``).
Qualified names are the names a value has after resolving the module's imports
(``import torch.nn as nn`` makes ``nn.Linear`` the qualified name ``torch.nn.Linear``).
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


class ApiKind(enum.Enum):
    """What a call to a process-related API does."""

    POOL = "pool"  # creates a worker pool that pickles functions and items into workers
    EXECUTOR = "executor"  # concurrent.futures.ProcessPoolExecutor
    PROCESS = "process"  # one Process(target=..., args=...)
    MANAGER = "manager"  # starts a server process
    SPAWN = "spawn"  # torch.multiprocessing.spawn / start_processes: always start method spawn
    GET_CONTEXT = "get_context"
    SET_START_METHOD = "set_start_method"
    FIXES_DEFAULT = "fixes_default"  # calls that freeze the default context (Queue, ...)
    JOBLIB = "joblib"  # joblib.Parallel: calling it with delayed(f)(...) items runs tasks
    DATALOADER = "dataloader"  # torch DataLoader with worker processes
    DASK_CLIENT = "dask_client"  # dask.distributed.Client: submit/map run tasks on workers
    RAY = "ray"  # ``f.remote(...)`` of a ``@ray.remote`` function


MULTIPROCESSING_MODULES = ("multiprocessing", "torch.multiprocessing")

PROCESS_APIS: dict[str, ApiKind] = {
    **{f"{m}.Pool": ApiKind.POOL for m in MULTIPROCESSING_MODULES},
    "multiprocessing.pool.Pool": ApiKind.POOL,
    **{f"{m}.Process": ApiKind.PROCESS for m in MULTIPROCESSING_MODULES},
    "multiprocessing.process.BaseProcess": ApiKind.PROCESS,
    **{f"{m}.Manager": ApiKind.MANAGER for m in MULTIPROCESSING_MODULES},
    "concurrent.futures.ProcessPoolExecutor": ApiKind.EXECUTOR,
    "concurrent.futures.process.ProcessPoolExecutor": ApiKind.EXECUTOR,
    "torch.multiprocessing.spawn": ApiKind.SPAWN,
    "torch.multiprocessing.start_processes": ApiKind.SPAWN,
    **{f"{m}.get_context": ApiKind.GET_CONTEXT for m in MULTIPROCESSING_MODULES},
    **{f"{m}.set_start_method": ApiKind.SET_START_METHOD for m in MULTIPROCESSING_MODULES},
    **{f"{m}.{name}": ApiKind.FIXES_DEFAULT for m in MULTIPROCESSING_MODULES
       for name in ("Queue", "SimpleQueue", "JoinableQueue", "get_start_method")},
    # synchronisation objects and shared values of the default context fix it too: each asks
    # ``get_context()`` for the context to create its semaphore in
    **{f"{m}.{name}": ApiKind.FIXES_DEFAULT for m in MULTIPROCESSING_MODULES
       for name in ("Lock", "RLock", "Event", "Semaphore", "BoundedSemaphore", "Condition",
                    "Barrier", "Value", "Array")},
    "joblib.Parallel": ApiKind.JOBLIB,
    "torch.utils.data.DataLoader": ApiKind.DATALOADER,
    "torch.utils.data.dataloader.DataLoader": ApiKind.DATALOADER,
    "dask.distributed.Client": ApiKind.DASK_CLIENT,
}

# Queues whose ``put`` hands data to a feeder thread or a pipe: joining the writer before the
# reader has drained them can deadlock (MPL303). Manager queues are proxies and do not.
QUEUE_APIS: frozenset[str] = frozenset(
    f"{m}.{name}" for m in MULTIPROCESSING_MODULES
    for name in ("Queue", "SimpleQueue", "JoinableQueue"))
QUEUE_CONTEXT_MEMBERS: frozenset[str] = frozenset({"Queue", "SimpleQueue", "JoinableQueue"})

# ``delayed(f)`` wrappers: calling the result records one task instead of running ``f``.
DELAYED: dict[str, str] = {"joblib.delayed": "joblib", "dask.delayed": "dask"}
# Decorators that make ``f.remote(...)`` run ``f`` as a task on another process.
RAY_REMOTE: frozenset[str] = frozenset({"ray.remote"})

# joblib backends that run tasks in this process: nothing is pickled.
JOBLIB_THREAD_BACKENDS: frozenset[str] = frozenset({"threading", "sequential", "dask"})

# Members of a context object (``ctx = multiprocessing.get_context("spawn")``) and what they do.
CONTEXT_MEMBERS: dict[str, ApiKind] = {
    "Pool": ApiKind.POOL,
    "Process": ApiKind.PROCESS,
    "Manager": ApiKind.MANAGER,
    "set_start_method": ApiKind.SET_START_METHOD,
    "Queue": ApiKind.FIXES_DEFAULT,
    "SimpleQueue": ApiKind.FIXES_DEFAULT,
    "JoinableQueue": ApiKind.FIXES_DEFAULT,
}

# The kinds of call whose presence lets a rule fire: a start, or a start-method choice.
STARTING_KINDS = frozenset({ApiKind.POOL, ApiKind.EXECUTOR, ApiKind.PROCESS, ApiKind.MANAGER,
                            ApiKind.SPAWN, ApiKind.SET_START_METHOD, ApiKind.JOBLIB,
                            ApiKind.DATALOADER, ApiKind.DASK_CLIENT})

# The last part of each stdlib-style starting API's name: a call to it spells that part as a
# whole identifier, either as the imported name (``from multiprocessing import Pool as P``) or
# as an attribute (``ctx.Pool``, ``mp.spawn``).
_MP_START_WORDS: tuple[str, ...] = tuple(sorted(
    {name.rpartition(".")[2] for name, kind in PROCESS_APIS.items()
     if kind in STARTING_KINDS and ("multiprocessing" in name or "concurrent" in name)}
    | {member for member, kind in CONTEXT_MEMBERS.items() if kind in STARTING_KINDS}))

# A file can start processes only when one of its import statements spells a module word below
# and the file spells one of that word's start words. tests/test_knowledge.py checks that every
# process API is covered.
PREFILTER_WORDS: dict[str, tuple[str, ...]] = {
    "multiprocessing": _MP_START_WORDS,
    "concurrent": _MP_START_WORDS,
    "joblib": ("Parallel",),
    "utils.data": ("DataLoader",),
    "DataLoader": ("DataLoader",),
    "dask": ("Client", "delayed"),  # ``dask.delayed(f)(x)``, ``client.submit``
    "ray": ("remote",),  # ``f.remote(x)``
    # ``import torch`` alone, then ``torch.multiprocessing.Process(...)`` spelled out
    "torch": (*(f"multiprocessing.{word}" for word in _MP_START_WORDS), "data.DataLoader"),
}

# A start word that counts only when the file also matches a pattern: a DataLoader has worker
# processes only when the file spells ``num_workers`` other than as ``num_workers=0`` (a
# literal, a name, ``args.workers``, a ``**`` dict entry); without it the loader has none.
_WORKERS = r"\bnum_workers\b(?!\s*=\s*\(*\s*0+\s*[,)])"
PREFILTER_REQUIRES: dict[str, str] = {"DataLoader": _WORKERS, "data.DataLoader": _WORKERS}


@dataclass(frozen=True)
class TaskMethod:
    """How a method of a pool or executor receives its function and its work items."""

    func_index: int  # positional index of the callable
    func_keyword: str
    shape: str  # "map": each item is one call's argument; "starmap": each item is an args tuple;
    #             "args": positional args/kwargs follow the callable; "apply": args=/kwds= tuples


POOL_METHODS: dict[str, TaskMethod] = {
    "map": TaskMethod(0, "func", "map"),
    "map_async": TaskMethod(0, "func", "map"),
    "imap": TaskMethod(0, "func", "map"),
    "imap_unordered": TaskMethod(0, "func", "map"),
    "starmap": TaskMethod(0, "func", "starmap"),
    "starmap_async": TaskMethod(0, "func", "starmap"),
    "apply": TaskMethod(0, "func", "apply"),
    "apply_async": TaskMethod(0, "func", "apply"),
}

EXECUTOR_METHODS: dict[str, TaskMethod] = {
    "submit": TaskMethod(0, "fn", "args"),
    "map": TaskMethod(0, "fn", "map_zip"),  # executor.map(fn, *iterables) zips its iterables
}

# Keyword arguments that choose a start method when a pool or executor is created.
CONTEXT_KEYWORDS: frozenset[str] = frozenset({"mp_context", "context"})

# Keyword a start of kind SPAWN uses to choose its method; it defaults to "spawn".
SPAWN_METHOD_KEYWORD = "start_method"

# Importing one of these makes a script an "ML entry script" for MPL103: each runs threads or
# initialises CUDA, so forking after it is unsafe.
THREADED_FRAMEWORKS: frozenset[str] = frozenset({
    "torch", "tensorflow", "keras", "jax", "transformers", "sentence_transformers",
    "onnxruntime", "mxnet",
    # built on torch, so importing them imports it: torchvision, timm, open_clip, whisper,
    # ultralytics, fastai, stanza; with CUDA or OpenMP thread pools of their own: paddle,
    # xgboost, lightgbm, catboost
    "torchvision", "timm", "open_clip", "whisper", "ultralytics", "fastai", "stanza",
    "paddle", "xgboost", "lightgbm", "catboost",
})


@dataclass(frozen=True)
class ModelPattern:
    """A family of calls whose result is a model object."""

    pattern: str  # qualified name, ``*`` matches within and across dots
    label: str  # how messages name the model's kind
    capitalized: bool = False  # only names whose last part starts upper-case (classes)
    exclude: tuple[str, ...] = ()
    source: str = ""  # where the library documents it
    # keyword arguments that, given a true value, make the call return something else
    not_with: tuple[str, ...] = ()

    def matches(self, qualname: str) -> bool:
        if not fnmatchcase(qualname, self.pattern):
            return False
        if self.capitalized and not qualname.rpartition(".")[2][:1].isupper():
            return False
        return not any(fnmatchcase(qualname, ex) for ex in self.exclude)


_KERAS_ROOTS = ("keras", "tensorflow.keras", "tf_keras")
_SKLEARN_NON_ESTIMATORS = (
    "sklearn.utils.*", "sklearn.metrics.*", "sklearn.datasets.*", "sklearn.exceptions.*",
    "sklearn.base.*", "sklearn.model_selection.*Fold", "sklearn.model_selection.*Split",
    # fitted preprocessing transformers hold a few arrays: cheap to send, not the model
    "sklearn.preprocessing.*", "sklearn.impute.*",
    "sklearn.model_selection.LeaveOneOut", "sklearn.model_selection.LeavePOut",
    "sklearn.model_selection.LeaveOneGroupOut", "sklearn.model_selection.LeavePGroupsOut",
    "sklearn.model_selection.PredefinedSplit",
)
_HF_NON_MODELS = ("*Tokenizer*", "*Config*", "*Processor*", "*FeatureExtractor*")

# Models of the ML libraries people run in pools, each with the page that documents it.
_MORE_LIBRARIES: tuple[ModelPattern, ...] = (
    ModelPattern("torchvision.models.*", "torchvision model",
                 exclude=("*Weights*", "torchvision.models.get_weight",
                          "torchvision.models.get_model_weights",
                          "torchvision.models.get_model_builder", "torchvision.models.list_models",
                          "torchvision.models.feature_extraction.*", "*.transform.*"),
                 source="https://pytorch.org/vision/stable/models.html"),
    ModelPattern("timm.create_model", "timm model",
                 source="https://huggingface.co/docs/timm/reference/models"),
    ModelPattern("open_clip.create_model", "open_clip model",
                 source="https://github.com/mlfoundations/open_clip#usage"),
    ModelPattern("whisper.load_model", "whisper model",
                 source="https://github.com/openai/whisper#python-usage"),
    ModelPattern("pywhispercpp.model.Model", "whisper.cpp model",
                 source="https://absadiki.github.io/pywhispercpp/#pywhispercpp.model.Model"),
    ModelPattern("faster_whisper.WhisperModel", "faster-whisper model",
                 source="https://github.com/SYSTRAN/faster-whisper#usage"),
    *(ModelPattern(f"ultralytics.{name}", "ultralytics model",
                   source="https://docs.ultralytics.com/reference/engine/model/")
      for name in ("YOLO", "RTDETR", "SAM", "FastSAM", "NAS")),
    ModelPattern("fastai.*load_learner", "fastai Learner",
                 source="https://docs.fast.ai/learner.html#load_learner"),
    ModelPattern("spacy.load", "spaCy pipeline",
                 source="https://spacy.io/api/top-level#spacy.load"),
    # an empty pipeline is cheap to build (see ``cheap_to_build``), not to pickle: its vocab
    # and components go with every task
    ModelPattern("spacy.blank", "spaCy pipeline",
                 source="https://spacy.io/api/top-level#spacy.blank"),
    ModelPattern("stanza.Pipeline", "stanza pipeline",
                 source="https://stanfordnlp.github.io/stanza/pipeline.html"),
    *(ModelPattern(f"gensim.models.{name}", "gensim model",
                   source="https://radimrehurek.com/gensim/models/word2vec.html")
      for name in ("Word2Vec", "FastText", "Doc2Vec", "LdaModel", "Word2Vec.load",
                   "FastText.load", "Doc2Vec.load", "LdaModel.load", "KeyedVectors.load",
                   "KeyedVectors.load_word2vec_format")),
    ModelPattern("gensim.downloader.load", "gensim model", not_with=("return_path",),
                 source="https://radimrehurek.com/gensim/downloader.html"),
    # the estimator classes (``xgboost.XGB*``), the Booster, and ``train()``, which returns one
    *(ModelPattern(f"{library}.{name}", f"{library} model", capitalized=name.endswith("*"),
                   source=docs)
      for library, estimators, docs in (
          ("xgboost", "XGB*", "https://xgboost.readthedocs.io/en/stable/python/python_api.html"),
          ("lightgbm", "LGBM*", "https://lightgbm.readthedocs.io/en/stable/Python-API.html"))
      for name in (estimators, "Booster", "train")),
    ModelPattern("catboost.CatBoost*", "catboost model", capitalized=True,
                 exclude=("catboost.CatBoostError",),
                 source="https://catboost.ai/docs/en/concepts/python-quickstart"),
    ModelPattern("paddle.jit.load", "Paddle model",
                 source="https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/jit/load_en.html"),
    ModelPattern("paddle.nn.*", "paddle.nn.Layer", capitalized=True,
                 exclude=("paddle.nn.functional.*", "paddle.nn.initializer.*",
                          "paddle.nn.utils.*", "paddle.nn.ParamAttr"),
                 source="https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/Overview_en.html"),
    ModelPattern("mxnet.gluon.nn.*", "mxnet gluon Block", capitalized=True,
                 source="https://mxnet.apache.org/versions/1.9.1/api/python/docs/api/gluon/nn/index.html"),
    ModelPattern("mxnet.gluon.SymbolBlock.imports", "mxnet gluon Block",
                 source="https://mxnet.apache.org/versions/1.9.1/api/python/docs/api/gluon/symbol_block.html"),
)

MODEL_FACTORIES: tuple[ModelPattern, ...] = (
    ModelPattern("torch.nn.*", "torch.nn.Module", capitalized=True,
                 exclude=("torch.nn.Parameter", "torch.nn.Buffer", "torch.nn.Uninitialized*",
                          "torch.nn.utils.*", "torch.nn.init.*", "torch.nn.functional.*")),
    ModelPattern("torch.load", "loaded by torch.load"),
    ModelPattern("torch.jit.load", "TorchScript module"),
    ModelPattern("torch.jit.script", "TorchScript module"),
    ModelPattern("torch.jit.trace", "TorchScript module"),
    ModelPattern("torch.hub.load", "loaded by torch.hub.load"),
    *(ModelPattern(f"{root}.{name}", "Keras model")
      for root in _KERAS_ROOTS
      for name in ("Model", "Sequential", "models.Model", "models.Sequential")),
    *(ModelPattern(f"{root}.applications.*", "Keras model", capitalized=True)
      for root in _KERAS_ROOTS),
    *(ModelPattern(f"{root}.models.load_model", "Keras model") for root in _KERAS_ROOTS),
    *(ModelPattern(f"{root}.models.clone_model", "Keras model") for root in _KERAS_ROOTS),
    *(ModelPattern(f"{root}.saving.load_model", "Keras model") for root in _KERAS_ROOTS),
    ModelPattern("tensorflow.saved_model.load", "TensorFlow SavedModel"),
    ModelPattern("sklearn.*", "scikit-learn estimator", capitalized=True,
                 exclude=_SKLEARN_NON_ESTIMATORS),
    ModelPattern("joblib.load", "loaded by joblib.load"),
    ModelPattern("pickle.load", "loaded by pickle.load"),
    ModelPattern("transformers.pipeline", "transformers pipeline"),
    *(ModelPattern(f"{pkg}.*.from_pretrained", "transformers model", exclude=_HF_NON_MODELS)
      for pkg in ("transformers", "diffusers", "peft", "sentence_transformers")),
    ModelPattern("sentence_transformers.SentenceTransformer", "SentenceTransformer"),
    ModelPattern("sentence_transformers.CrossEncoder", "SentenceTransformer"),
    ModelPattern("onnxruntime.InferenceSession", "onnxruntime.InferenceSession"),
    ModelPattern("flair.models.*.load", "flair model"),
    *_MORE_LIBRARIES,
)

# Labels of generic deserialisers: what they return is whatever was saved, often a dict that
# holds the model under a key such as "model" or "clf".
DESERIALISED: frozenset[str] = frozenset({"loaded by pickle.load", "loaded by joblib.load"})
MODEL_KEY = re.compile(r"(?:^|_)(?:model|models|clf|classifier|regressor|estimator|net|network"
                       r"|pipeline|booster|learner)(?:_|$)", re.IGNORECASE)

# Calls that read a data set into memory (MPL102 reports them at import time).
DATA_LOADERS: tuple[ModelPattern, ...] = (
    *(ModelPattern(f"numpy.{name}", "data loaded by numpy")
      for name in ("load", "loadtxt", "genfromtxt", "fromfile")),
    ModelPattern("pandas.read_*", "data loaded by pandas"),
    ModelPattern("datasets.load_dataset", "Hugging Face dataset"),
    ModelPattern("datasets.load_from_disk", "Hugging Face dataset"),
    ModelPattern("tensorflow_datasets.load", "TensorFlow dataset"),
    ModelPattern("torchvision.datasets.*", "torchvision dataset", capitalized=True),
)

# torch.cuda functions that initialise CUDA in the calling process (measured on an H100: a
# fork after any of these fails in a child that uses CUDA). device_count, manual_seed and
# manual_seed_all are lazy and do not.
CUDA_INIT_CALLS: frozenset[str] = frozenset({
    "torch.cuda.is_available", "torch.cuda.get_device_name", "torch.cuda.set_device",
    "torch.cuda.init", "torch.cuda.current_device", "torch.cuda.synchronize",
    "torch.cuda.get_device_properties", "torch.cuda.get_device_capability",
    "torch.cuda.mem_get_info",
})
CUDA_LAZY_CALLS: frozenset[str] = frozenset({
    "torch.cuda.device_count", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all",
    "torch.cuda.is_initialized",
})
TORCH_ROOT = "torch"
CUDA_DEVICE_PREFIX = "cuda"
TORCH_DEVICE = "torch.device"
CUDA_METHOD = "cuda"  # tensor.cuda(), module.cuda()
DEVICE_METHODS: frozenset[str] = frozenset({"to"})  # x.to("cuda"), x.to(device=...)

# Objects that cannot be pickled into another process (MPL204), by the call that makes them.
RESOURCE_FACTORIES: tuple[ModelPattern, ...] = (
    *(ModelPattern(f"threading.{name}", f"threading.{name}")
      for name in ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event",
                   "Barrier")),
    ModelPattern("open", "open file"),
    ModelPattern("io.open", "open file"),
    ModelPattern("gzip.open", "open file"),
    ModelPattern("socket.socket", "socket"),
    ModelPattern("socket.create_connection", "socket"),
    ModelPattern("sqlite3.connect", "sqlite3 connection"),
    *(ModelPattern(name, "database connection")
      for name in ("psycopg2.connect", "psycopg.connect", "pymysql.connect",
                   "mysql.connector.connect", "pymongo.MongoClient", "redis.Redis",
                   "sqlalchemy.create_engine")),
    ModelPattern("tensorflow.Session", "TensorFlow session"),
    ModelPattern("tensorflow.compat.v1.Session", "TensorFlow session"),
)
# multiprocessing objects that may only reach a child by inheritance (Process args), never
# through a pool's or executor's task queue: "Queue objects should only be shared between
# processes through inheritance".
INHERIT_ONLY: tuple[ModelPattern, ...] = tuple(
    ModelPattern(f"{m}.{name}", f"{m}.{name}")
    for m in MULTIPROCESSING_MODULES
    for name in ("Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event",
                 "Barrier", "Queue", "SimpleQueue", "JoinableQueue", "Value", "Array"))

# Model output keeps autograd history unless one of these is in force (MPL205).
GRAD_OFF: frozenset[str] = frozenset({
    "torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad",
    "torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode",
})
GRAD_SWITCH = "torch.set_grad_enabled"
# Tensor methods whose result still requires grad when the tensor does.
GRAD_KEEPING_METHODS: frozenset[str] = frozenset({
    "cpu", "to", "cuda", "float", "double", "half", "clone", "contiguous", "view", "reshape",
    "squeeze", "unsqueeze", "flatten", "softmax", "log_softmax", "sigmoid", "sum", "mean", "t",
    "permute", "transpose",
})
# Layers without parameters: their output needs grad only when their input does.
PARAMETER_FREE_LAYERS: frozenset[str] = frozenset(
    f"torch.nn.{name}" for name in (
        "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout", "Identity", "Flatten",
        "GELU", "SiLU", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
        "AvgPool3d", "AdaptiveAvgPool2d", "Unflatten"))
# Calling one of these on a model runs it (inference or training): heavy at import time.
MODEL_RUN_METHODS: frozenset[str] = frozenset({
    "fit", "fit_transform", "predict", "predict_proba", "generate", "encode", "forward",
    "evaluate"})
# Calls on a model that mean it is trained, so a task needs a fresh one per item.
TRAINING_METHODS: frozenset[str] = frozenset({
    "fit", "partial_fit", "fit_transform", "train", "compile", "parameters", "backward", "step"})
# Uses of a model that leave it as it was: calling it, or these methods.
READ_ONLY_METHODS: frozenset[str] = frozenset({
    "eval", "to", "cpu", "cuda", "predict", "predict_proba", "transform", "encode", "forward",
    "decision_function"})
# Calls that finish setting up a model just built, on the model itself: a load-per-worker fix
# moves them into the initializer with the build.
SETUP_METHODS: frozenset[str] = frozenset({
    "load_state_dict", "eval", "to", "cpu", "cuda", "half", "float", "double", "bfloat16",
    "requires_grad_", "share_memory", "load_weights", "set_weights"})
# Queue and pipe methods that send to / take from another process.
QUEUE_PUTS: frozenset[str] = frozenset({"put", "put_nowait", "send"})
QUEUE_GETS: frozenset[str] = frozenset({"get", "get_nowait"})
# A loader decorated with one of these runs once per process, not once per call.
CACHE_DECORATORS: frozenset[str] = frozenset({"functools.lru_cache", "functools.cache"})

# A class that subclasses one of these (directly or through classes of the linted tree) builds
# model objects.
MODEL_BASES: dict[str, str] = {
    "torch.nn.Module": "torch.nn.Module",
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "pytorch_lightning.LightningModule": "torch.nn.Module",
    "lightning.LightningModule": "torch.nn.Module",
    "lightning.pytorch.LightningModule": "torch.nn.Module",
    "transformers.PreTrainedModel": "transformers model",
    "tensorflow.Module": "tf.Module",
    **{f"{root}.{name}": "Keras model" for root in _KERAS_ROOTS
       for name in ("Model", "Sequential", "models.Model", "models.Sequential")},
    "sklearn.base.BaseEstimator": "scikit-learn estimator",
    "paddle.nn.Layer": "paddle.nn.Layer",
    "mxnet.gluon.Block": "mxnet gluon Block",
    "mxnet.gluon.HybridBlock": "mxnet gluon Block",
    "flax.linen.Module": "flax.linen.Module",
}

# Methods that return the model they are called on, per model label prefix ("" = every model).
SELF_RETURNING_METHODS: dict[str, frozenset[str]] = {
    "": frozenset({"to", "cuda", "cpu", "eval", "train", "half", "float", "double", "bfloat16",
                   "share_memory", "requires_grad_", "to_empty"}),
    "scikit-learn estimator": frozenset({"fit", "set_params"}),
}

# Methods of queues and pipe ends that pickle their argument for another process.
QUEUE_SEND_METHODS: frozenset[str] = frozenset({"put", "put_nowait", "send"})

# Calling one of these on a model puts its weights in shared memory on purpose (Hogwild-style
# training), so passing that model to processes is intended.
SHARED_MEMORY_METHODS: frozenset[str] = frozenset({"share_memory"})

FUNCTOOLS_PARTIAL: frozenset[str] = frozenset({"functools.partial"})
ITERTOOLS_REPEAT: frozenset[str] = frozenset({"itertools.repeat"})
BUILTIN_ZIP = "zip"
BUILTIN_WRAPPERS: frozenset[str] = frozenset({"list", "tuple", "iter"})  # keep their items


def _roots(names: Iterable[str]) -> frozenset[str]:
    return frozenset(name.partition(".")[0] for name in names)


# Top-level packages whose names are never looked up among the linted tree's own modules.
KNOWN_LIBRARIES: frozenset[str] = (
    frozenset(sys.stdlib_module_names)
    | _roots(PROCESS_APIS)
    | _roots(p.pattern for p in MODEL_FACTORIES)
    | _roots(MODEL_BASES)
    | THREADED_FRAMEWORKS
    | _roots(p.pattern for p in DATA_LOADERS)
    | _roots(p.pattern for p in RESOURCE_FACTORIES if "." in p.pattern)
    | {"numpy", "pandas", "scipy", "cv2", "PIL", "matplotlib", "ray", "dask", "distributed"}
)


def is_known_library(qualname: str) -> bool:
    return qualname.partition(".")[0] in KNOWN_LIBRARIES


def model_label(qualname: str, extra: tuple[ModelPattern, ...] = ()) -> str | None:
    """Return how a call to ``qualname`` is described when it builds a model, else None."""
    pattern = model_pattern(qualname, extra)
    return pattern.label if pattern is not None else None


def model_pattern(qualname: str, extra: tuple[ModelPattern, ...] = ()) -> ModelPattern | None:
    """The first model family ``qualname`` belongs to, if any."""
    for pattern in (*MODEL_FACTORIES, *extra):
        if pattern.matches(qualname):
            return pattern
    return None


PLATFORMS: tuple[str, ...] = ("linux", "macos", "windows")
START_METHODS: frozenset[str] = frozenset({"fork", "spawn", "forkserver"})


def default_start_methods(python: tuple[int, int] | None,
                          platforms: Iterable[str]) -> frozenset[str]:
    """The start methods "the platform default" can mean for the targets: fork on Linux up to
    3.13, forkserver on Linux from 3.14, spawn on Windows and macOS (since 3.8).
    ``python`` None means any version."""
    methods: set[str] = set()
    for platform in platforms:
        if platform != "linux":
            methods.add("spawn")
            continue
        if python is None or python < (3, 14):
            methods.add("fork")
        if python is None or python >= (3, 14):
            methods.add("forkserver")
    return frozenset(methods)


def cheap_to_build(qualname: str) -> bool:
    """Model objects that cost nothing to build again: unfitted estimators, losses, layers
    without weights."""
    return (model_label(qualname) == "scikit-learn estimator"
            or any(fnmatchcase(qualname, p) for p in _UNFITTED_ESTIMATORS)
            or qualname in EMPTY_PIPELINES or qualname in ESTIMATOR_COPIES
            # a copy loads nothing: the load that built the original is the one that counts
            or qualname in MODEL_COPIES
            or qualname in PARAMETER_FREE_LAYERS
            or (qualname.startswith("torch.nn.") and qualname.endswith("Loss")))


# Pipelines built empty, with no trained components to load.
EMPTY_PIPELINES: frozenset[str] = frozenset({"spacy.blank"})

# Calls that return a copy of the model passed to them; ``sklearn.base.clone`` accepts
# estimators only, so its result is an (unfitted) estimator even when the argument is unknown.
MODEL_COPIES: frozenset[str] = frozenset({"copy.copy", "copy.deepcopy"})
ESTIMATOR_COPIES: frozenset[str] = frozenset({
    "sklearn.clone", "sklearn.base.clone", "sklearn.pipeline.clone",
})

# Estimator classes of the boosting libraries: built unfitted, they hold no trees yet.
_UNFITTED_ESTIMATORS = ("xgboost.XGB*", "lightgbm.LGBM*", "catboost.CatBoost*")


def first_match(qualname: str, patterns: Iterable[ModelPattern]) -> str | None:
    """The label of the first pattern that matches ``qualname``."""
    return next((p.label for p in patterns if p.matches(qualname)), None)


def library_of(qualname: str) -> str:
    """The top-level package a qualified name comes from (``torch.nn.Linear`` -> ``torch``)."""
    return qualname.partition(".")[0]


def is_ml_framework(module: str) -> bool:
    return module.partition(".")[0] in THREADED_FRAMEWORKS


# -- what a program does differently under spawn than under fork (analysis/spawn.py) ----------
DATALOADERS: frozenset[str] = frozenset(
    name for name, kind in PROCESS_APIS.items() if kind is ApiKind.DATALOADER)

# torch calls that make a tensor: sent to a Process, it is a private copy under fork and shared
# memory under spawn (torch registers reducers with multiprocessing's pickler).
TENSOR_FACTORIES: frozenset[str] = frozenset(
    f"torch.{name}" for name in (
        "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "rand", "randn",
        "randint", "arange", "linspace", "eye", "zeros_like", "ones_like", "empty_like",
        "full_like", "rand_like", "randn_like", "stack", "cat", "Tensor", "FloatTensor",
        "LongTensor"))

# Settings a process keeps in its own memory: a forked child inherits them from the parent,
# a spawned child starts from the library's defaults. A name ending in "." covers its module.
INHERITED_STATE: frozenset[str] = frozenset({
    "random.seed", "random.setstate", "numpy.random.seed", "numpy.random.set_state",
    "numpy.set_printoptions", "numpy.seterr",
    "torch.manual_seed", "torch.seed", "torch.set_rng_state", "torch.cuda.manual_seed",
    "torch.cuda.manual_seed_all", "torch.set_num_threads", "torch.set_num_interop_threads",
    "torch.set_default_dtype", "torch.set_default_tensor_type", "torch.set_default_device",
    "torch.set_grad_enabled", "torch.use_deterministic_algorithms",
    "torch.set_float32_matmul_precision", "torch.set_printoptions", "torch.set_flush_denormal",
    "torch.backends.",
    "tensorflow.random.set_seed", "tensorflow.keras.utils.set_random_seed",
    "keras.utils.set_random_seed", "tensorflow.config.", "tensorflow.get_logger",
    "transformers.set_seed", "transformers.logging.", "pytorch_lightning.seed_everything",
    "lightning.seed_everything", "lightning.pytorch.seed_everything",
    "logging.basicConfig", "logging.config.", "logging.disable", "logging.setLoggerClass",
    "warnings.filterwarnings", "warnings.simplefilter", "warnings.resetwarnings",
    "decimal.setcontext", "decimal.localcontext", "sys.setrecursionlimit",
    "sys.setswitchinterval", "socket.setdefaulttimeout", "locale.setlocale",
})

# A library function named like one of these changes the library's state (a logger's level,
# a seed, a backend flag): INHERITED_STATE for the libraries the table does not list.
SETTER_PREFIXES: tuple[str, ...] = ("set_", "enable_", "disable_", "use_")
SETTER_NAMES: frozenset[str] = frozenset({
    "seed", "manual_seed", "seed_everything", "setLevel", "disable", "filterwarnings",
    "simplefilter", "basicConfig", "dictConfig", "fileConfig", "setrecursionlimit",
    "set_printoptions", "register_backend"})

# Calls that, made on import, do something each spawned child then does again: output,
# files, exit handlers. Names starting with "." are methods (``log.write(...)``).
IMPORT_TIME_EFFECTS: frozenset[str] = frozenset({
    "print", "pprint.pprint", "atexit.register", "sys.stdout.write", "sys.stderr.write",
    *(f"logging.{level}" for level in ("debug", "info", "warning", "warn", "error",
                                       "critical", "exception", "log")),
    "warnings.warn", "open", "io.open", "os.makedirs", "os.mkdir", "os.remove",
    "os.unlink", "os.rename", "os.replace", "shutil.", "torch.save", "numpy.save",
    "numpy.savez", "numpy.savetxt", "json.dump", "pickle.dump",
    ".write", ".writelines", ".to_csv", ".to_json", ".to_parquet", ".save", ".info",
    ".warning", ".error", ".debug", ".critical", ".exception",
})

# Read by spelling alone in other modules' import-time code (so an alias cannot hide them):
# names that choose or fix the start method, and names that write output.
CONTEXT_FIXING_NAMES: frozenset[str] = frozenset({
    "get_start_method", "Queue", "SimpleQueue", "JoinableQueue", "Lock",
    "RLock", "Event", "Semaphore", "BoundedSemaphore", "Condition", "Barrier", "Value",
    "Array", "Manager", "Pool", "ProcessPoolExecutor"})
OUTPUT_NAMES: frozenset[str] = frozenset({
    "print", "register", "write", "writelines", "info", "warning", "error",
    "critical", "warn", "makedirs", "mkdir", "save", "dump"})

# Methods that change the object they are called on: a global changed this way at run time
# keeps its import-time value in a spawned child.
MUTATING_METHODS: frozenset[str] = frozenset({
    "append", "extend", "insert", "pop", "popitem", "remove", "clear", "update",
    "setdefault", "add", "discard", "sort", "reverse", "parse", "set",
    "load_state_dict", "eval", "train", "to", "cuda", "cpu", "half", "float", "double",
    "requires_grad_", "fit", "partial_fit", "compile", "build", "load_weights", "add_tokens",
    "add_special_tokens", "merge_from_file", "merge_from_list", "freeze", "defrost",
    "zero_", "fill_", "copy_", "add_", "mul_", "__setitem__",
})
