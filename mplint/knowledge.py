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
    LIBRARY = "library"  # another library's call or object that runs work in processes


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
    # DataLoader subclasses of other libraries: the same worker processes
    **{name: ApiKind.DATALOADER for name in (
        "torch_geometric.loader.DataLoader", "torch_geometric.data.DataLoader",
        "torch_geometric.loader.NeighborLoader", "monai.data.DataLoader",
        "dgl.dataloading.DataLoader", "dgl.dataloading.GraphDataLoader",
        "webdataset.WebLoader", "paddle.io.DataLoader")},
    **{f"{root}.{name}": ApiKind.DASK_CLIENT for root in ("dask.distributed", "distributed")
       for name in ("Client", "LocalCluster")},
}
# dask's Client with no address, and a LocalCluster, start a local cluster of worker processes
# (spawned, so they import the main module) unless ``processes=False`` asks for threads
# (https://distributed.dask.org/en/stable/api.html#distributed.LocalCluster)
DASK_LOCAL_CLUSTERS: frozenset[str] = frozenset({"dask.distributed.LocalCluster",
                                                 "distributed.LocalCluster"})

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
    "torch_geometric": ("NeighborLoader",),
    "webdataset": ("WebLoader",),
    "dgl": ("GraphDataLoader",),
    "paddle": ("io.DataLoader",),
    "dask": ("Client", "LocalCluster", "delayed"),  # ``dask.delayed(f)(x)``, ``client.submit``
    "distributed": ("Client", "LocalCluster"),
    "ray": ("remote",),  # ``f.remote(x)``
    # ``import torch`` alone, then ``torch.multiprocessing.Process(...)`` spelled out
    "torch": (*(f"multiprocessing.{word}" for word in _MP_START_WORDS), "data.DataLoader"),
}

# A start word that counts only when the file also matches a pattern: a DataLoader has worker
# processes only when the file spells ``num_workers`` other than as ``num_workers=0`` (a
# literal, a name, ``args.workers``, a ``**`` dict entry); without it the loader has none.
_WORKERS = r"\bnum_workers\b(?!\s*=\s*\(*\s*0+\s*[,)])"
PREFILTER_REQUIRES: dict[str, str] = {name: _WORKERS for name in (
    "DataLoader", "data.DataLoader", "NeighborLoader", "WebLoader", "GraphDataLoader",
    "io.DataLoader")}


@dataclass(frozen=True)
class Arg:
    """Where an argument sits in a call: its position (None: keyword only) and its keyword.
    ``within``: the value is a keyword of the call that built the argument
    (``Trainer(args=TrainingArguments(dataloader_num_workers=4))``)."""

    index: int | None
    keyword: str
    within: str = ""


@dataclass(frozen=True)
class Work:
    """What a call sends to worker processes, and where each part sits in the call."""

    func: Arg | None = None  # the callable the workers run
    shape: str = "none"  # how the payload maps onto the callable's parameters: "items" (one
    #   item per call), "star_items" (each item an args tuple), "zip_items" (the i-th iterable
    #   gives the i-th argument), "args" (each value one argument), "args_tuple" (a tuple of
    #   arguments and a dict of keywords), "none"; "delayed_calls" (joblib: the iterable holds
    #   ``delayed(f)(...)`` calls), "call" (the call's own arguments: ray, dask)
    items: tuple[Arg, ...] = ()  # iterables whose items are pickled, one task each
    values: tuple[Arg, ...] = ()  # values pickled whole
    rest: bool = False  # every other argument (positional after the callable, and keywords
    #                     not listed in ``own``) is sent: as items for "zip_items", else values
    own: tuple[str, ...] = ()  # keywords the API itself takes (not sent with ``rest``)
    callables: tuple[Arg, ...] = ()  # other callables the workers run (initializer, collate_fn)
    keywords: Arg | None = None  # a dict of keyword arguments the callable gets with every task
    per_task: bool = True  # pickled with every task, or once per worker process
    label: str = ""  # appended to the API's name in messages: "(initializer=...)"
    starts: bool = False  # a method call that starts the object's workers (mpire, Lightning)


@dataclass(frozen=True)
class Workers:
    """Where a call's worker count sits, and which counts start no process."""

    args: tuple[Arg, ...]  # the largest of these counts
    default: int = 0  # the count when none is given; -1: one per CPU
    serial: int = 0  # counts from 0 up to this run everything in the calling process
    flags: tuple[str, ...] = ()  # keywords one of which must be given as a literal True as well

    @property
    def condition(self) -> str:
        """How messages say which setting starts processes."""
        if self.flags:
            return f"{self.flags[0]}=True"
        return " or ".join(f"{arg.within or arg.keyword} > {self.serial}" for arg in self.args)


@dataclass(frozen=True)
class ProcessApi:
    """A library call that starts worker processes or makes an object that does: one entry
    per API, read by one path in the analysis (``ModuleFacts``)."""

    name: str  # qualified name of the function or class; for a method, its name
    kind: ApiKind
    doc: str  # where the library documents it
    label: str = ""  # how messages name it (default: ``name``)
    pickler: str = "pickle"  # how callables and data reach the workers: "pickle", "dill"
    #                          (lambdas and local functions travel), "cloudpickle"
    method: str | None = None  # the start method: None = multiprocessing's default context,
    #   which the module's set_start_method() chooses; "default" = the library's own context
    #   with the platform's default method; "spawn", "fork", ...
    reimports_main: bool = True  # its workers import the main module again under spawn (loky
    #                              and ray workers do not: they receive functions by value)
    work: Work | None = None  # what the call itself sends
    workers: Workers | None = None  # None: it always starts workers
    requires: tuple[Arg, ...] = ()  # all must be given for the call to start workers
    when: tuple[tuple[str, str], ...] = ()  # (keyword, a value it must spell) for it to start
    methods: str = ""  # the object it makes runs work through this table of TASK_METHODS
    receiver: str = ""  # a method: what it is called on: "framework:<lib>" (a model of that
    #   library, or a value the analysis does not know), "model:<lib>" (only a model of that
    #   library), "label:<model label>", or "" (anything)
    imports: tuple[str, ...] = ()  # a method: modules one of which the file must import
    #   (ANY_MODULE: none needed, the keyword is the library's own); the prefilter's module
    #   words (default: the name's first part)

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def condition(self) -> str:
        """The setting that makes a call start processes, for messages where it is unknown."""
        return self.workers.condition if self.workers is not None else ""

    @property
    def module_words(self) -> tuple[str, ...]:
        return self.imports or (self.name.partition(".")[0],)


ANY_MODULE = "*"
_FUNC = Arg(0, "func")
_ITERABLE = (Arg(1, "iterable"),)

# Methods of the objects process APIs make, per table name: what each sends to the workers.
TASK_METHODS: dict[str, dict[str, Work]] = {
    "pool": {
        **{m: Work(_FUNC, "items", items=_ITERABLE)
           for m in ("map", "map_async", "imap", "imap_unordered")},
        **{m: Work(_FUNC, "star_items", items=_ITERABLE) for m in ("starmap", "starmap_async")},
        **{m: Work(_FUNC, "args_tuple", values=(Arg(1, "args"), Arg(2, "kwds")))
           for m in ("apply", "apply_async")},
    },
    "executor": {
        "submit": Work(Arg(0, "fn"), "args", rest=True),
        "map": Work(Arg(0, "fn"), "zip_items", rest=True,  # zips its iterables
                    own=("timeout", "chunksize", "buffersize")),
    },
    "joblib": {"": Work(shape="delayed_calls")},  # Parallel(...)(delayed(f)(x) for x in xs)
    # asyncio's ``loop.run_in_executor(executor, func, *args)``: a submit to the executor it
    # is given first (https://docs.python.org/3/library/asyncio-eventloop.html)
    "executor_argument": {"run_in_executor": Work(Arg(1, "func"), "args", rest=True)},
    # pathos pools: map(f, *iterables) zips like the builtin, pipe(f, *args) is one call
    "pathos": {
        **{m: Work(Arg(0, "f"), "zip_items", rest=True) for m in ("map", "imap", "uimap",
                                                                  "amap")},
        **{m: Work(Arg(0, "f"), "args", rest=True) for m in ("pipe", "apipe")},
    },
    # mpire: workers start with the first map; an item that is a tuple is unpacked
    "mpire": {
        **{m: Work(Arg(0, "func"), "items", items=(Arg(1, "iterable_of_args"),), starts=True)
           for m in ("map", "map_unordered", "imap", "imap_unordered")},
        **{m: Work(Arg(0, "func"), "args_tuple", values=(Arg(1, "args"), Arg(2, "kwargs")),
                   starts=True) for m in ("apply", "apply_async")},
    },
    "pebble": {
        "schedule": Work(Arg(0, "function"), "args_tuple",
                         values=(Arg(1, "args"), Arg(2, "kwargs"))),
        "map": Work(Arg(0, "function"), "zip_items", rest=True, own=("chunksize", "timeout")),
    },
    # Lightning spawns its processes when the trainer runs; the model travels by design
    "lightning": {m: Work(starts=True) for m in ("fit", "validate", "test", "predict")},
    # each builds DataLoaders with the arguments' dataloader_num_workers
    "hf_trainer": {m: Work(starts=True) for m in ("train", "evaluate", "predict")},
}

_INITIALIZER = Work(callables=(Arg(1, "initializer"),), per_task=False, label="(initializer=...)")

# What creating each standard process object sends (the standard library's and
# torch.multiprocessing's: the same for a context's members).
CREATION_WORK: dict[ApiKind, Work] = {
    ApiKind.PROCESS: Work(Arg(1, "target"), "args_tuple",
                          values=(Arg(3, "args"), Arg(4, "kwargs")), per_task=False),
    ApiKind.SPAWN: Work(Arg(0, "fn"), values=(Arg(1, "args"),), per_task=False),  # fn(rank, *args)
    ApiKind.POOL: _INITIALIZER,
    ApiKind.EXECUTOR: Work(callables=(Arg(2, "initializer"),), per_task=False,
                           label="(initializer=...)"),
    ApiKind.DATALOADER: Work(values=(Arg(0, "dataset"),),
                             callables=(Arg(None, "collate_fn"), Arg(None, "worker_init_fn")),
                             per_task=False),
}
# A Process subclass with its own constructor: its arguments are not Process's, and the child
# gets the object, built from every argument the constructor is given.
PROCESS_SUBCLASS_WORK = Work(rest=True, per_task=False)
# A DataLoader's worker count: 0 (no worker processes) when it is not given.
DATALOADER_WORKERS = Workers((Arg(5, "num_workers"),))  # condition: "num_workers > 0"

# The method table of each standard kind's objects.
KIND_METHODS: dict[ApiKind, str] = {ApiKind.POOL: "pool", ApiKind.EXECUTOR: "executor",
                                    ApiKind.DASK_CLIENT: "executor", ApiKind.JOBLIB: "joblib"}

_DILL_MP = "https://github.com/uqfoundation/multiprocess"

# Other libraries' calls that start processes. Calls of "library" kind run their work in the
# same call; the others make an object of the kind named.
LIBRARY_APIS: tuple[ProcessApi, ...] = (
    # multiprocessing's API on other pickling: the same objects, the library's own default
    *(ProcessApi(f"{module}.Pool", ApiKind.POOL, doc, pickler=pickler, method="default",
                 methods="pool", work=_INITIALIZER)
      for module, doc, pickler in (("multiprocess", _DILL_MP, "dill"),
                                   ("billiard", "https://github.com/celery/billiard", "pickle"))),
    *(ProcessApi(f"{module}.Process", ApiKind.PROCESS, doc, pickler=pickler, method="default",
                 work=CREATION_WORK[ApiKind.PROCESS])
      for module, doc, pickler in (("multiprocess", _DILL_MP, "dill"),
                                   ("billiard", "https://github.com/celery/billiard", "pickle"))),
    *(ProcessApi(name, ApiKind.LIBRARY, "https://pathos.readthedocs.io/en/latest/pathos.html",
                 label="pathos ProcessPool", pickler="dill", method="default", methods="pathos")
      for name in ("pathos.multiprocessing.ProcessingPool", "pathos.multiprocessing.ProcessPool",
                   "pathos.pools.ProcessPool", "pathos.pools.ProcessingPool")),
    ProcessApi("pathos.pools._ProcessPool", ApiKind.POOL,
               "https://pathos.readthedocs.io/en/latest/pathos.html", label="pathos _ProcessPool",
               pickler="dill", method="default", methods="pool", work=_INITIALIZER),
    ProcessApi("mpire.WorkerPool", ApiKind.LIBRARY,
               "https://sybrenjansen.github.io/mpire/master/usage/workerpool/setup.html",
               method="default", methods="mpire",
               workers=Workers((Arg(0, "n_jobs"),), default=-1)),
    ProcessApi("pebble.ProcessPool", ApiKind.LIBRARY,
               "https://pebble.readthedocs.io/en/latest/#pools", methods="pebble"),
    ProcessApi("loky.get_reusable_executor", ApiKind.EXECUTOR,
               "https://loky.readthedocs.io/en/stable/API.html", pickler="cloudpickle",
               method="loky", methods="executor", reimports_main=False),
    ProcessApi("ray.util.multiprocessing.Pool", ApiKind.POOL,
               "https://docs.ray.io/en/latest/ray-more-libs/multiprocessing.html",
               pickler="cloudpickle", method="ray", methods="pool", reimports_main=False),
    # reinforcement learning: one process per environment; environment factories travel with
    # cloudpickle, so lambdas are fine
    *(ProcessApi(name, ApiKind.LIBRARY, doc, label=label, pickler="cloudpickle", method=method,
                 work=Work(items=(Arg(0, "env_fns"),), per_task=False))
      for name, label, method, doc in (
          *((f"stable_baselines3.common.vec_env{sub}.SubprocVecEnv", "SubprocVecEnv",
             "forkserver", "https://stable-baselines3.readthedocs.io/en/master/guide/"
             "vec_envs.html#subprocvecenv") for sub in ("", ".subproc_vec_env")),
          *((f"baselines.common.vec_env{sub}", "baselines SubprocVecEnv", "spawn",
             "https://github.com/openai/baselines/tree/master/baselines/common/vec_env")
            for sub in (".SubprocVecEnv", ".subproc_vec_env.SubprocVecEnv", ".ShmemVecEnv",
                        ".shmem_vec_env.ShmemVecEnv")),
          *((f"{gym}.vector.AsyncVectorEnv", f"{gym}.vector.AsyncVectorEnv", None,
             "https://gymnasium.farama.org/api/vector/async_vector_env/")
            for gym in ("gym", "gymnasium")))),
    *(ProcessApi(f"stable_baselines3.common.{module}.make_vec_env", ApiKind.LIBRARY,
                 "https://stable-baselines3.readthedocs.io/en/master/guide/vec_envs.html",
                 label="make_vec_env(vec_env_cls=SubprocVecEnv)", pickler="cloudpickle",
                 method="forkserver", when=(("vec_env_cls", "SubprocVecEnv"),))
      for module in ("env_util", "cmd_util")),
    # one call that starts workers and runs the work
    # dask's process scheduler: a pool of the spawn context, data sent with cloudpickle
    *(ProcessApi(name, ApiKind.LIBRARY,
                 "https://docs.dask.org/en/stable/scheduling.html#local-processes",
                 label=f"dask {short}(scheduler=\"processes\")", pickler="cloudpickle",
                 method="spawn", imports=("dask",) if "." not in name else (),
                 when=(("scheduler", "processes"), ("scheduler", "multiprocessing")))
      for name, short in (("dask.compute", "compute"), ("compute", ".compute"))),
    ProcessApi("tqdm.contrib.concurrent.process_map", ApiKind.LIBRARY,
               "https://tqdm.github.io/docs/contrib.concurrent/",
               work=Work(Arg(0, "fn"), "zip_items", rest=True,
                         own=("max_workers", "chunksize", "lock_name", "tqdm_class", "desc",
                              "total", "leave", "disable", "position", "ncols", "unit"))),
    ProcessApi("pqdm.processes.pqdm", ApiKind.LIBRARY, "https://github.com/niedakh/pqdm",
               work=Work(Arg(1, "function"), "items", items=(Arg(0, "array"),)),
               workers=Workers((Arg(2, "n_jobs"),), default=-1, serial=1)),
    *(ProcessApi(f"p_tqdm.{name}", ApiKind.LIBRARY, "https://github.com/swansonk14/p_tqdm",
                 pickler="dill", method="default",
                 work=Work(Arg(0, "function"), "zip_items", rest=True,
                           own=("num_cpus", "tqdm", "desc", "total", "disable")))
      for name in ("p_map", "p_imap", "p_umap", "p_uimap")),
    # tsfresh's feature extraction runs a multiprocessing Pool of n_jobs workers (n_jobs=0:
    # in the caller); the default is half the CPUs
    *(ProcessApi(name, ApiKind.LIBRARY,
                 "https://tsfresh.readthedocs.io/en/latest/text/parallelization.html",
                 workers=Workers((Arg(None, "n_jobs"),), default=-1))
      for name in ("tsfresh.extract_features", "tsfresh.extract_relevant_features",
                   "tsfresh.feature_extraction.extract_features")),
    ProcessApi("parmap.map", ApiKind.LIBRARY, "https://parmap.readthedocs.io/",
               work=Work(Arg(0, "function"), "items", items=(Arg(1, "iterable"),))),
    ProcessApi("parmap.starmap", ApiKind.LIBRARY, "https://parmap.readthedocs.io/",
               work=Work(Arg(0, "function"), "star_items", items=(Arg(1, "iterables"),))),
    # ``nlp`` is the name Hugging Face datasets had before its 1.0 release
    *(ProcessApi(f"{package}.load_dataset", ApiKind.LIBRARY,
                 "https://huggingface.co/docs/datasets/package_reference/loading_methods",
                 pickler="dill", method="default",
                 workers=Workers((Arg(None, "num_proc"),), serial=1))
      for package in ("datasets", "nlp")),
    # gensim's multicore models train in the constructor when they are given a corpus
    ProcessApi("gensim.models.LdaMulticore", ApiKind.LIBRARY,
               "https://radimrehurek.com/gensim/models/ldamulticore.html",
               requires=(Arg(0, "corpus"),), workers=Workers((Arg(None, "workers"),), -1)),
    ProcessApi("gensim.models.ldamulticore.LdaMulticore", ApiKind.LIBRARY,
               "https://radimrehurek.com/gensim/models/ldamulticore.html",
               requires=(Arg(0, "corpus"),), workers=Workers((Arg(None, "workers"),), -1)),
    *(ProcessApi(name, ApiKind.LIBRARY, "https://radimrehurek.com/gensim/models/ensemblelda.html",
                 requires=(Arg(None, "corpus"),),
                 workers=Workers((Arg(None, "ensemble_workers"), Arg(None, "distance_workers")),
                                 default=1, serial=1))
      for name in ("gensim.models.EnsembleLda", "gensim.models.ensemblelda.EnsembleLda")),
    ProcessApi("accelerate.notebook_launcher", ApiKind.LIBRARY,
               "https://huggingface.co/docs/accelerate/basic_tutorials/notebook",
               method="fork", work=Work(Arg(0, "function"), "args_tuple",
                                        values=(Arg(1, "args"),), per_task=False),
               workers=Workers((Arg(2, "num_processes"),), default=1, serial=1)),
    *(ProcessApi(f"{root}.Trainer", ApiKind.LIBRARY,
                 "https://lightning.ai/docs/pytorch/stable/accelerators/gpu_intermediate.html",
                 label="Lightning Trainer (ddp_spawn)", method="spawn", methods="lightning",
                 when=(("strategy", "ddp_spawn"), ("accelerator", "ddp_spawn"),
                       ("distributed_backend", "ddp_spawn")))
      for root in ("lightning", "lightning.pytorch", "pytorch_lightning")),
    # Hugging Face Trainer (and trl's): DataLoader workers when its arguments ask for them;
    # arguments built elsewhere (a parser, another module) are taken as the default, 0
    *(ProcessApi(name, ApiKind.LIBRARY,
                 "https://huggingface.co/docs/transformers/main_classes/trainer",
                 label="Hugging Face Trainer", methods="hf_trainer",
                 workers=Workers((Arg(1, "args", within="dataloader_num_workers"),)))
      for name in ("transformers.Trainer", "transformers.Seq2SeqTrainer", "trl.SFTTrainer",
                   "trl.DPOTrainer", "trl.RewardTrainer")),
    # methods of the libraries' objects
    ProcessApi("pipe", ApiKind.LIBRARY, "https://spacy.io/api/language#pipe",
               label="spaCy nlp.pipe(n_process=...)", receiver="framework:spacy",
               imports=("spacy",), work=Work(items=(Arg(0, "texts"),), per_task=False),
               workers=Workers((Arg(None, "n_process"),), default=1, serial=1)),
    *(ProcessApi(name, ApiKind.LIBRARY,
                 "https://huggingface.co/docs/datasets/process#multiprocessing",
                 label=f"Hugging Face datasets .{name}(num_proc=...)", pickler="dill",
                 method="default", imports=(ANY_MODULE,),
                 work=Work(Arg(0, "function"), "items", keywords=Arg(None, "fn_kwargs")),
                 workers=Workers((Arg(None, "num_proc"),), serial=1))
      for name in ("map", "filter")),
    *(ProcessApi(name, ApiKind.LIBRARY,
                 "https://keras.io/2.15/api/models/model_training_apis/",
                 label=f"Keras {name}(use_multiprocessing=True)", imports=("keras", "tensorflow"),
                 work=Work(values=(Arg(0, data),), per_task=False),
                 workers=Workers((Arg(None, "workers"),), default=1,
                                 flags=("use_multiprocessing", "pickle_safe")))
      for name, data in (("fit", "x"), ("evaluate", "x"), ("predict", "x"),
                         ("fit_generator", "generator"), ("evaluate_generator", "generator"),
                         ("predict_generator", "generator"))),
    *(ProcessApi(name, ApiKind.LIBRARY, "https://nalepae.github.io/pandarallel/",
                 label=f"pandarallel .{name}", pickler="dill", method="default",
                 imports=("pandarallel",), work=Work(Arg(0, "func"), "items"))
      for name in ("parallel_apply", "parallel_applymap", "parallel_map")),
    # ultralytics trains and validates through DataLoaders with 8 workers unless told otherwise
    *(ProcessApi(name, ApiKind.LIBRARY, "https://docs.ultralytics.com/modes/train/#train-settings",
                 label=f"ultralytics model.{name}() with DataLoader workers",
                 receiver="model:ultralytics", imports=("ultralytics",),
                 workers=Workers((Arg(None, "workers"),), default=8))
      for name in ("train", "val")),
    ProcessApi("start_multi_process_pool", ApiKind.LIBRARY,
               "https://sbert.net/docs/package_reference/sentence_transformer/"
               "SentenceTransformer.html#sentence_transformers.SentenceTransformer"
               ".start_multi_process_pool",
               label="SentenceTransformer.start_multi_process_pool", method="spawn",
               imports=("sentence_transformers",)),
)

# Each library API by qualified name (functions and classes) and by method name.
LIBRARY_CALLS: dict[str, ProcessApi] = {a.name: a for a in LIBRARY_APIS if "." in a.name}
LIBRARY_METHODS: dict[str, tuple[ProcessApi, ...]] = {}
for _api in LIBRARY_APIS:
    if "." not in _api.name:
        LIBRARY_METHODS[_api.name] = (*LIBRARY_METHODS.get(_api.name, ()), _api)


def _start_words(api: ProcessApi) -> tuple[str, ...]:
    """What a file must spell for a call of ``api`` to start workers: the value a keyword
    must hold, the function's or class's own name, or the keyword that asks for workers."""
    if api.when:
        return tuple(value for _, value in api.when)
    if api.workers is not None and any(arg.within for arg in api.workers.args):
        # the count is read only from a call the file makes: it spells the keyword
        return tuple(arg.within for arg in api.workers.args if arg.within)
    if "." in api.name:
        return (api.name.rpartition(".")[2],)
    if api.workers is None:
        return (api.name,)
    if api.workers.flags:
        return api.workers.flags
    if not 0 <= api.workers.default <= api.workers.serial:
        return (api.name,)  # it starts workers when the count is not given
    return tuple(arg.keyword for arg in api.workers.args)


for _api in LIBRARY_APIS:
    for _word in _api.module_words:
        PREFILTER_WORDS[_word] = tuple(dict.fromkeys(
            (*PREFILTER_WORDS.get(_word, ()), *_start_words(_api))))
# Words that make a file worth analysing whatever it imports: keywords only process APIs take
# (``.map(fn, num_proc=8)`` of a Hugging Face dataset made by another module).
PREFILTER_ANYWHERE: tuple[str, ...] = PREFILTER_WORDS.pop(ANY_MODULE, ())
# Code shown without its imports (a question's excerpt, a snippet pasted into an issue): a name
# below that the file reads but binds nowhere, in no scope and with no ``import *``, is read as
# the multiprocessing API its conventional spelling names. Complete code binds what it reads, so
# this changes nothing there.
UNIMPORTED_NAMES: dict[str, str] = {
    "mp": "multiprocessing",
    "multiprocessing": "multiprocessing",
    "Pool": "multiprocessing.Pool",
    "Process": "multiprocessing.Process",
}
# A flag that asks for workers counts only given as a literal True (the analysis says the
# same): library code that passes the flag on is not parsed.
# (One pattern for all of an entry's flags: a module word's start words that need patterns
# count only where every pattern they need is met.)
for _api in LIBRARY_APIS:
    if _api.workers is not None and _api.workers.flags:
        _either = "|".join(_api.workers.flags)
        for _flag in _api.workers.flags:
            PREFILTER_REQUIRES[_flag] = rf"\b(?:{_either})\s*=\s*True\b"

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
    # OCR models: detection and recognition networks loaded when the object is made
    ModelPattern("easyocr.Reader", "EasyOCR reader",
                 source="https://www.jaided.ai/easyocr/documentation/"),
    ModelPattern("paddleocr.PaddleOCR", "PaddleOCR model",
                 source="https://paddlepaddle.github.io/PaddleOCR/latest/en/quick_start.html"),
    ModelPattern("cnocr.CnOcr", "CnOcr model",
                 source="https://cnocr.readthedocs.io/zh-cn/stable/usage/"),
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
    # stanza's name up to 2020
    ModelPattern("stanfordnlp.Pipeline", "stanza pipeline",
                 source="https://pypi.org/project/stanfordnlp/"),
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
    # tokenizers, processors and feature extractors: their vocabularies and tables (megabytes
    # for a fast tokenizer) are pickled with every task like a model's weights
    *(ModelPattern(f"{pkg}.*{kind}*.from_pretrained", f"transformers {label}")
      for pkg in ("transformers", "sentence_transformers")
      for kind, label in (("Tokenizer", "tokenizer"), ("Processor", "processor"),
                          ("FeatureExtractor", "feature extractor"))),
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
    *(ModelPattern(f"{package}.{name}", "Hugging Face dataset")
      for package in ("datasets", "nlp") for name in ("load_dataset", "load_from_disk")),
    ModelPattern("tensorflow_datasets.load", "TensorFlow dataset"),
    ModelPattern("torchvision.datasets.*", "torchvision dataset", capitalized=True),
    ModelPattern("sklearn.datasets.fetch_*", "scikit-learn dataset"),
    ModelPattern("sklearn.datasets.load_*", "scikit-learn dataset"),
    ModelPattern("scipy.io.loadmat", "data loaded by scipy"),
)
# Loads MPL301 names by what they load ("loads a tokenizer") rather than as a model's: each
# costs a read of files or a download every time it runs.
PER_TASK_LOADS: tuple[ModelPattern, ...] = tuple(
    ModelPattern(f"{package}.*{kind}*.from_pretrained", label,
                 source="https://huggingface.co/docs/transformers/main_classes/tokenizer")
    for package in ("transformers", "sentence_transformers")
    for kind, label in (("Tokenizer", "a tokenizer"), ("Processor", "a processor"),
                        ("FeatureExtractor", "a feature extractor")))

# Keywords a library dataset keeps on the object it builds (torchvision, torchaudio, PyG): what
# is given there goes to a DataLoader's workers with the dataset.
DATASET_KEPT_KEYWORDS: frozenset[str] = frozenset({
    "transform", "target_transform", "transforms", "pre_transform", "loader", "is_valid_file"})
# Classes that keep the callables they are given, and containers of them.
TRANSFORM_HOLDERS: tuple[str, ...] = ("torchvision.transforms.", "torchvision.transforms.v2.")
# A tensor made by one of these requires grad (MPL205).
TORCH_PARAMETERS: frozenset[str] = frozenset({"torch.nn.Parameter",
                                              "torch.nn.parameter.Parameter"})

# Methods of an open file that read all of it.
FILE_READ_METHODS: frozenset[str] = frozenset({"read", "readlines"})

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


# Names of old library releases that projects also give their own packages (``nlp/``): the
# tree's own modules of these names are still read.
LOCAL_PACKAGE_NAMES: frozenset[str] = frozenset({"nlp"})
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
    | {word for api in LIBRARY_APIS for word in api.module_words}
) - LOCAL_PACKAGE_NAMES


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
