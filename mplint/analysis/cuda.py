"""Which calls use CUDA, and which of them initialise it in the calling process."""

from __future__ import annotations

import libcst as cst

from mplint import knowledge
from mplint.analysis.collector import CallSite
from mplint.analysis.evaluator import Evaluator, keyword_argument
from mplint.analysis.scopes import BindingKind, Scope
from mplint.analysis.values import Qual

_MAX_HOPS = 4


def cuda_call(evaluator: Evaluator, site: CallSite, initialising: bool = True,
              devices: frozenset[str] = frozenset()) -> str | None:
    """How to name the call at ``site`` when it uses CUDA (with ``initialising``: only when it
    initialises CUDA in this process), else None. ``devices``: parameters of the function the
    call is in that receive a CUDA device."""
    call = site.node
    if "torch" not in {m.partition(".")[0] for m in evaluator.record.imported}:
        return None
    func = evaluator.value(call.func, site.scope, site.order)
    if isinstance(func, Qual):
        name = func.name
        if name in knowledge.CUDA_INIT_CALLS:
            return f"{name}()"
        if not initialising and name.startswith("torch.cuda.") and name not in (
                knowledge.CUDA_LAZY_CALLS):
            return f"{name}()"
        device = keyword_argument(call, "device")
        if (name.startswith(f"{knowledge.TORCH_ROOT}.") and name != knowledge.TORCH_DEVICE
                and device is not None
                and is_cuda_device(device, site.scope, evaluator, devices=devices)):
            return f'{name}(..., device="cuda")'
        return None
    if not isinstance(call.func, cst.Attribute):
        return None
    method = call.func.attr.value
    if method == knowledge.CUDA_METHOD and len(call.args) <= 1:
        return ".cuda()"
    if method in knowledge.DEVICE_METHODS and any(
            is_cuda_device(a.value, site.scope, evaluator, devices=devices) for a in call.args
            if a.keyword is None or a.keyword.value == "device"):
        return '.to("cuda")'
    return None


def is_cuda_device(expr: cst.BaseExpression, scope: Scope, evaluator: Evaluator,
                   hops: int = 0, *, devices: frozenset[str] = frozenset(),
                   maybe: bool = False) -> bool:
    """``"cuda"``, ``"cuda:0"``, ``f"cuda:{i}"``, ``torch.device("cuda")``, or a name bound
    once to one of those; a parameter named in ``devices``; with ``maybe``, also
    ``"cuda" if ... else "cpu"``."""
    if maybe and isinstance(expr, cst.IfExp):
        return any(is_cuda_device(branch, scope, evaluator, hops + 1, maybe=True)
                   for branch in (expr.body, expr.orelse))
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return isinstance(value, str) and value.startswith(knowledge.CUDA_DEVICE_PREFIX)
    if isinstance(expr, cst.FormattedString):
        first = expr.parts[0] if expr.parts else None
        return (isinstance(first, cst.FormattedStringText)
                and first.value.startswith(knowledge.CUDA_DEVICE_PREFIX))
    if isinstance(expr, cst.Call) and expr.args:
        func = evaluator.value(expr.func, scope)
        return (isinstance(func, Qual) and func.name == knowledge.TORCH_DEVICE
                and is_cuda_device(expr.args[0].value, scope, evaluator, hops + 1,
                                   maybe=maybe))
    if isinstance(expr, cst.Name) and hops < _MAX_HOPS:
        owner = scope.lookup_scope(expr.value)
        bindings = owner.bindings.get(expr.value, []) if owner is not None else []
        if (expr.value in devices and bindings
                and all(b.kind is BindingKind.PARAM for b in bindings)):
            return True
        if len(bindings) == 1 and bindings[0].kind is BindingKind.ASSIGN and bindings[0].value:
            return is_cuda_device(bindings[0].value, bindings[0].scope, evaluator, hops + 1,
                                  maybe=maybe)
    return False

