from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import libcst as cst

from mplint import knowledge
from mplint.analysis import (
    BindingKind,
    Func,
    GradSample,
    Model,
    ModuleFacts,
    Qual,
    Scope,
    Value,
    WorkSite,
    children,
    decorated_by,
    grad_samples,
)
from mplint.fixers.base import UNSAFE, Fixer, contains
from mplint.knowledge import ApiKind
from mplint.rules.base import Invalid, Report, Rule, Valid, offer

_MAX_HOPS = 4


class GradTensorCrossing(Rule):
    code = "MPL205"
    name = "grad-tensor-crossing"
    summary = "tensor that requires grad returned from or queued by a worker"
    what = (
        "Flags a task function (of a pool, executor, process, joblib, ray or dask) that returns, "
        "or puts on a queue, the output of a torch model call (directly, through a local name, "
        "a tuple, or methods such as `.cpu()` that keep autograd history) made without "
        "`torch.no_grad()`/`torch.inference_mode()` and without `.detach()`. The model is "
        "known from its constructor or loader, or from what the start passes to the task. "
        "Also flags a sample that requires grad (created with `requires_grad=True`, a "
        "`Parameter`, or derived from one by indexing, arithmetic or `clone()`) that a "
        "dataset's `__getitem__`/`__iter__` returns to a DataLoader's workers batching with the "
        "default `collate_fn`."
    )
    why = (
        "A model's output requires grad and is not a leaf, and torch refuses to pickle it "
        "across processes: \"Cowardly refusing to serialize non-leaf tensor which requires_grad, "
        "since autograd does not support crossing process boundaries\". A returned result "
        "fails the pool call; a child that puts it on a Queue dies in the queue's feeder thread "
        "while the parent blocks forever on `get()`. A DataLoader worker batches samples with "
        "`torch.stack(..., out=...)` into shared memory, which autograd refuses for any tensor "
        "that requires grad, leaf or not (measured with torch 2.13, fork and spawn): "
        "\"stack(): functions with out=... arguments don't support automatic "
        "differentiation\"."
    )
    fix_safety = (
        "Unsafe: `.detach()` is added to the returned expression. The parent then "
        "gets the same values without autograd history, which is what crossing a process "
        "boundary can carry; code that expected gradients in the parent (it never could) "
        "changes. Not offered for tuples and other containers, nor for queued tensors: torch sends "
        "those through shared memory, which needs the producer alive until the parent "
        "receives them, so the child should put plain data."
    )
    references = ("https://pytorch.org/docs/stable/notes/multiprocessing.html",)
    runtime_errors = (
        "Cowardly refusing to serialize non-leaf tensor",
        "arguments don't support automatic differentiation",
    )

    VALID = (
        Valid(
            """
            import multiprocessing as mp
            import torch

            def apply(model, row):
                with torch.no_grad():
                    return model(row)

            if __name__ == "__main__":
                model = torch.nn.Linear(3, 1)
                with mp.Pool(2) as pool:
                    out = pool.starmap(apply, [(model, torch.ones(3)) for _ in range(2)])
            """,
            "under no_grad the output does not require grad (MPL201 still reports the model)",
        ),
        Valid(
            """
            import torch
            import torch.multiprocessing as mp

            def run(queue):
                layer = torch.nn.Linear(3, 1)
                queue.put(layer(torch.ones(3)).detach())

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                queue = mp.Queue()
                mp.Process(target=run, args=(queue,)).start()
                print(queue.get())
            """,
            "the detached tensor pickles fine",
        ),
        Valid(
            """
            import multiprocessing as mp
            import torch

            @torch.inference_mode()
            def apply(row):
                return torch.nn.Linear(3, 1)(row)

            if __name__ == "__main__":
                with mp.Pool(2) as pool:
                    out = pool.map(apply, [torch.ones(3)])
            """,
            "the whole task runs in inference mode",
        ),
        Valid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset


            class Points(Dataset):
                def __init__(self):
                    self.points = torch.randn(16, 2, requires_grad=True)

                def __len__(self):
                    return len(self.points)

                def __getitem__(self, index):
                    return (self.points[index] * 2).detach()


            if __name__ == "__main__":
                loader = DataLoader(Points(), batch_size=4, num_workers=2)
                print([batch.shape for batch in loader])
            """,
            "the sample is detached before the workers batch it",
        ),
    )
    INVALID = (
        Invalid(
            """
            import multiprocessing as mp
            import torch

            def apply(model, row):
                return model(row)

            if __name__ == "__main__":
                model = torch.nn.Linear(3, 1)
                with mp.Pool(2) as pool:
                    out = pool.starmap(apply, [(model, torch.ones(3)) for _ in range(2)])
            """,
            (5, 12, "`model(row)` is the output of model `model` (torch.nn.Module) with "
                    "autograd on, and Pool.starmap pickles what `apply` returns back to the "
                    "parent: torch refuses to pickle a tensor that requires grad (\"Cowardly "
                    "refusing to serialize non-leaf tensor\"); detach it or run the model under "
                    "torch.inference_mode()"),
            fixed="""
            import multiprocessing as mp
            import torch

            def apply(model, row):
                return model(row).detach()

            if __name__ == "__main__":
                model = torch.nn.Linear(3, 1)
                with mp.Pool(2) as pool:
                    out = pool.starmap(apply, [(model, torch.ones(3)) for _ in range(2)])
            """,
        ),
        Invalid(
            """
            import torch
            import torch.multiprocessing as mp

            def run(queue):
                layer = torch.nn.Linear(3, 1)
                out = layer(torch.ones(3))
                queue.put(out)

            if __name__ == "__main__":
                mp.set_start_method("spawn")
                queue = mp.Queue()
                mp.Process(target=run, args=(queue,)).start()
                print(queue.get())
            """,
            (7, 15, "`out` is the output of model `layer` (torch.nn.Module) with autograd on, "
                    "and `run` puts it on a queue for the parent: torch refuses to pickle a "
                    "tensor that requires grad, the child dies in the queue's feeder thread and "
                    "the parent waits forever; detach it or run the model under "
                    "torch.inference_mode() (no automatic fix: a queued tensor also needs its "
                    "producer alive until it is received; put plain data (`.tolist()`, "
                    "`.item()`) instead)"),
        ),
        Invalid(
            """
            import torch
            from torch.utils.data import DataLoader, Dataset


            class Points(Dataset):
                def __init__(self):
                    self.points = torch.randn(16, 2, requires_grad=True)

                def __len__(self):
                    return len(self.points)

                def __getitem__(self, index):
                    return self.points[index] * 2


            if __name__ == "__main__":
                loader = DataLoader(Points(), batch_size=4, num_workers=2)
                print([batch.shape for batch in loader])
            """,
            (13, 16, "`self.points[index] * 2` requires grad (it comes from "
                     "`torch.randn(...)`), and `Points.__getitem__` returns it to the workers of "
                     "DataLoader: the default collate_fn cannot batch it in a worker (\"stack(): "
                     "functions with out=... arguments don't support automatic "
                     "differentiation\"); detach it, or create it without requires_grad"),
            fixed="""
            import torch
            from torch.utils.data import DataLoader, Dataset


            class Points(Dataset):
                def __init__(self):
                    self.points = torch.randn(16, 2, requires_grad=True)

                def __len__(self):
                    return len(self.points)

                def __getitem__(self, index):
                    return (self.points[index] * 2).detach()


            if __name__ == "__main__":
                loader = DataLoader(Points(), batch_size=4, num_workers=2)
                print([batch.shape for batch in loader])
            """,
        ),
    )

    def check(self, facts: ModuleFacts) -> Iterator[Report]:
        reported: set[cst.CSTNode] = set()
        for work in facts.work:
            for func in facts.task_functions(work):
                if func.evaluator is not facts.evaluator or _grad_off(facts, func):
                    continue
                params = {name: value for name, value in facts.parameter_values(work, func).items()
                          if _torch_model(value)}
                for expr, how in _sent(func, work):
                    if expr in reported:
                        continue
                    source = _GradSource(facts, func, params).find(expr)
                    if source is None:
                        continue
                    reported.add(expr)
                    fix = _detach(expr) if how == "return" else (
                        "a queued tensor also needs its producer alive until it is received; "
                        "put plain data (`.tolist()`, `.item()`) instead")
                    yield offer(expr, _message(expr, source, how, func, work), fix)
        yield from self._in_datasets(facts)

    def _in_datasets(self, facts: ModuleFacts) -> Iterator[Report]:
        """Samples a DataLoader's workers batch: the default collate_fn stacks them into
        shared memory, which autograd refuses."""
        reported: set[cst.CSTNode] = set()
        for work in facts.work:
            if work.kind is not ApiKind.DATALOADER:
                continue
            for sample in grad_samples(facts, work):
                if sample.expr not in reported:
                    reported.add(sample.expr)
                    yield offer(sample.expr, _sample_message(sample, work), _detach(sample.expr))


def _message(expr: cst.BaseExpression, source: Model, how: str, func: Func,
             work: WorkSite) -> str:
    text = cst.Module([]).code_for_node(expr)
    text = text if len(text) <= 40 else text[:37] + "..."
    model = f"model `{source.name}`" if source.name else "a model"
    start = f"`{text}` is the output of {model} ({source.label}) with autograd on, and "
    if how == "return":
        return (f"{start}{work.api} pickles what `{func.node.name.value}` returns back to the "
                "parent: torch refuses to pickle a tensor that requires grad (\"Cowardly refusing "
                "to serialize non-leaf tensor\"); detach it or run the model under "
                "torch.inference_mode()")
    return (f"{start}`{func.node.name.value}` puts it on a queue for the parent: torch refuses "
            "to pickle a tensor that requires grad, the child dies in the queue's feeder thread "
            "and the parent waits forever; detach it or run the model under "
            "torch.inference_mode()")


def _sample_message(sample: GradSample, work: WorkSite) -> str:
    text = cst.Module([]).code_for_node(sample.expr)
    text = text if len(text) <= 40 else text[:37] + "..."
    origin = cst.Module([]).code_for_node(sample.origin.func)
    return (f"`{text}` requires grad (it comes from `{origin}(...)`), and "
            f"`{sample.klass.name.value}.{sample.method.name.value}` {sample.verb} it to the "
            f"workers of {work.api}: the default collate_fn cannot batch it in a worker "
            "(\"stack(): functions with out=... arguments don't support automatic "
            "differentiation\"); detach it, or create it without requires_grad")


def _torch_model(value: Value) -> bool:
    return isinstance(value, Model) and value.framework == knowledge.TORCH_ROOT


def _grad_off(facts: ModuleFacts, func: Func) -> bool:
    """The task runs under no_grad/inference_mode, or turns grad off or detaches itself."""
    if decorated_by(func, knowledge.GRAD_OFF):
        return True
    for site in facts.calls_in(func.node):
        called = func.evaluator.value(site.node.func, site.scope, site.order)
        if isinstance(called, Qual) and called.name == knowledge.GRAD_SWITCH:
            return True
        if (isinstance(site.node.func, cst.Attribute)
                and site.node.func.attr.value == "requires_grad_"):
            return True
    return False


def _sent(func: Func, work: WorkSite) -> Iterator[tuple[cst.BaseExpression, str]]:
    """Expressions the task sends to the parent: returned values (when results come back) and
    arguments of ``<name>.put(...)``; expressions under a grad-off ``with`` are skipped."""
    stack: list[tuple[cst.CSTNode, bool]] = [(func.node.body, False)]
    while stack:
        node, off = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(node, cst.With) and _grad_off_with(func, node):
            off = True
        if not off and isinstance(node, cst.Return) and node.value is not None and (
                work.returns_results):
            yield node.value, "return"
        if (not off and isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
                and node.func.attr.value in knowledge.QUEUE_PUTS and len(node.args) == 1
                and isinstance(node.func.value, cst.Name)):
            yield node.args[0].value, "put"
        stack.extend((child, off) for child in children(node))


def _grad_off_with(func: Func, node: cst.With) -> bool:
    for item in node.items:
        expr = item.item.func if isinstance(item.item, cst.Call) else item.item
        value = func.evaluator.value(expr, func.scope)
        if isinstance(value, Qual) and value.name in knowledge.GRAD_OFF | {knowledge.GRAD_SWITCH}:
            return True
    return False


class _GradSource:
    """Finds the model call an expression's value comes from, with autograd history."""

    def __init__(self, facts: ModuleFacts, func: Func, params: dict[str, Value]) -> None:
        self.facts, self.func, self.params = facts, func, params
        scope = facts.evaluator.function_scope(func.node)
        assert scope is not None
        self.scope: Scope = scope
        self.off = _off_regions(func)

    def find(self, expr: cst.BaseExpression, hops: int = 0) -> Model | None:
        if hops > _MAX_HOPS or any(contains(region, expr) for region in self.off):
            return None
        if isinstance(expr, cst.Call):
            return self._call(expr, hops)
        if isinstance(expr, cst.Name):
            bindings = self.scope.bindings.get(expr.value, [])
            if len(bindings) == 1 and bindings[0].kind is BindingKind.ASSIGN and bindings[0].value:
                return self.find(bindings[0].value, hops + 1)
            return None
        if isinstance(expr, (cst.Tuple, cst.List)):
            for element in expr.elements:
                found = self.find(element.value, hops + 1)
                if found is not None:
                    return found
        return None

    def _call(self, call: cst.Call, hops: int) -> Model | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in knowledge.GRAD_KEEPING_METHODS:
            return self.find(func.value, hops + 1)
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            func = func.value
        if isinstance(func, cst.Name) and func.value in self.params:
            model = self.params[func.value]
            assert isinstance(model, Model)
            return replace(model, name=func.value)
        value = self.facts.evaluator.value(func, self.scope)
        return value if _torch_model(value) and isinstance(value, Model) else None


def _off_regions(func: Func) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [func.node.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.With) and _grad_off_with(func, node):
            found.append(node)
            continue
        stack.extend(children(node))
    return found


def _detach(expr: cst.BaseExpression) -> Fixer | str:
    target = expr
    if isinstance(expr, (cst.BinaryOperation, cst.UnaryOperation)) and not expr.lpar:
        target = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    elif not isinstance(expr, (cst.Call, cst.Name, cst.Attribute, cst.Subscript,
                               cst.BinaryOperation, cst.UnaryOperation)):
        return "the value is a container; detach each tensor in it"
    detached = cst.Call(cst.Attribute(target, cst.Name("detach")))
    return Fixer(UNSAFE, "detach the tensor before it leaves the worker",
                 replace=[(expr, detached)])

