"""Per-module facts the rules query, computed from one traversal of the tree.

This is the analysis layer's one public face: rules and fixers import from here, not from the
modules behind it.
"""

from mplint.analysis.collector import CallSite
from mplint.analysis.cuda import cuda_call, is_cuda_device
from mplint.analysis.dataloader import (
    GradSample,
    Iteration,
    Sent,
    StartPoint,
    dataset_contents,
    grad_samples,
    start_point,
    worker_functions,
)
from mplint.analysis.evaluator import (
    argument,
    captured,
    keyword_argument,
    start_method_argument,
)
from mplint.analysis.facts import (
    ModuleFacts,
    Payload,
    PayloadMode,
    ProcessStart,
    Shape,
    StartMethodCall,
    WorkSite,
    comp_fors,
    decorated_by,
    function_of,
)
from mplint.analysis.scopes import Binding, BindingKind, Scope, ScopeKind
from mplint.analysis.spawn import (
    Difference,
    SpawnCheck,
    global_reads,
    reached,
    runtime_setter,
    unpicklable_callable,
)
from mplint.analysis.values import (
    Bound,
    Context,
    Func,
    Instance,
    Klass,
    LambdaValue,
    Model,
    Partial,
    ProcessObject,
    Qual,
    QueueObject,
    Resource,
    Tup,
    Value,
    item_of,
    models_in,
    resources_in,
)
from mplint.analysis.walk import children, main_guard_test, name_reads, own_nodes, walk

__all__ = [
    "Binding", "BindingKind", "Bound", "CallSite", "Context", "Difference", "Func", "GradSample",
    "Instance", "Iteration", "Klass", "LambdaValue", "Model", "ModuleFacts", "Partial", "Payload",
    "PayloadMode", "ProcessObject", "ProcessStart", "Qual", "QueueObject", "Resource", "Scope",
    "ScopeKind", "Sent", "Shape", "SpawnCheck", "StartMethodCall", "StartPoint", "Tup", "Value",
    "WorkSite", "argument", "captured", "children", "comp_fors", "cuda_call", "dataset_contents",
    "decorated_by", "function_of", "global_reads", "grad_samples", "is_cuda_device", "item_of",
    "keyword_argument", "main_guard_test", "models_in", "name_reads", "own_nodes", "reached",
    "resources_in",
    "runtime_setter", "start_method_argument", "start_point", "unpicklable_callable", "walk",
    "worker_functions",
]
