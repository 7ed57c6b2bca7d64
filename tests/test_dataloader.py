"""DataLoader workers: where they start on import, and what travels to them."""

from __future__ import annotations

import textwrap

import pytest

from mplint import lint_source


def findings(source: str, codes: list[str]) -> list[tuple[int, int, str, str]]:
    return [(f.line, f.column, f.code, f.message)
            for f in lint_source(textwrap.dedent(source).lstrip("\n")) if f.code in codes]


CASES = [
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=2)
        first = next(iter(loader))
        print(first)
        """,
        ["MPL101"],
        [
            (5, 9, "MPL101",
             "iterating torch.utils.data.DataLoader `loader` (with workers) at"
             " module level starts processes when the module is imported,"
             " outside `if __name__ == \"__main__\":`; under spawn or forkserver"
             " every child re-imports the module and fails in its bootstrapping"
             " phase"),
        ],
        id="next-iter-at-module-level",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=2)
        print(len(list(loader)))
        """,
        ["MPL101"],
        [
            (5, 11, "MPL101",
             "iterating torch.utils.data.DataLoader `loader` (with workers) at"
             " module level starts processes when the module is imported,"
             " outside `if __name__ == \"__main__\":`; under spawn or forkserver"
             " every child re-imports the module and fails in its bootstrapping"
             " phase"),
        ],
        id="list-at-module-level",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=2)


        def train(batches, epochs):
            for epoch in range(epochs):
                for step, (batch,) in enumerate(batches):
                    print(epoch, step, batch.sum().item())


        train(loader, 2)
        """,
        ["MPL101"],
        [
            (13, 1, "MPL101",
             "`train()` starts processes (torch.utils.data.DataLoader `loader`,"
             " iterated in `train`) when the module is imported, outside `if"
             " __name__ == \"__main__\":`; under spawn or forkserver every child"
             " re-imports the module and fails in its bootstrapping phase"),
        ],
        id="passed-to-function-called-at-module-level",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset


        def train(model, batches):
            for (batch,) in batches:
                model(batch).sum().backward()


        def main(workers=4):
            model = torch.nn.Linear(1, 1)
            loader = DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=4, num_workers=workers)
            train(model, loader)


        main()
        """,
        ["MPL101"],
        [
            (16, 1, "MPL101",
             "`main()` starts processes (torch.utils.data.DataLoader in `main`)"
             " when the module is imported, outside `if __name__ =="
             " \"__main__\":`; under spawn or forkserver every child re-imports"
             " the module and fails in its bootstrapping phase"),
        ],
        id="built-in-main-iterated-by-helper",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        table = torch.load("table.pt")
        loader = DataLoader(TensorDataset(table), batch_size=4, num_workers=2)
        for (batch,) in loader:
            model = torch.load("net.pt")
            print(model(batch))
        weights = torch.load("more.pt")
        """,
        ["MPL102"],
        [
            (4, 9, "MPL102",
             "`torch.load(...)` loads a model (loaded by torch.load) when the"
             " module is imported; the module starts processes"
             " (torch.utils.data.DataLoader), and under spawn or forkserver"
             " every child imports it again and repeats this; move it under the"
             " main guard or into a worker initializer (no automatic fix: the"
             " module has no plain main guard to move it into)"),
        ],
        id="heavy-work-after-first-iteration-left-out",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms


        def main(root, workers):
            data = datasets.CIFAR10(root, transform=transforms.ToTensor())
            data.target_transform = lambda label: torch.tensor(label)
            loader = DataLoader(data, batch_size=32, num_workers=workers)
            return sum(len(images) for images, _ in loader)


        if __name__ == "__main__":
            print(main("data", 4))
        """,
        ["MPL203"],
        [
            (8, 29, "MPL203",
             "a lambda in `data.target_transform` is pickled with the dataset"
             " into every worker of DataLoader (when num_workers > 0) under"
             " spawn or forkserver, and fails (\"Can't pickle local object\");"
             " define it at module level"),
        ],
        id="lambda-assigned-to-dataset-attribute",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, Dataset


        class Noise(torch.utils.data.IterableDataset):
            def __iter__(self):
                for _ in range(4):
                    sample = torch.ones(3).requires_grad_()
                    yield sample, 0


        if __name__ == "__main__":
            loader = DataLoader(Noise(), batch_size=2, num_workers=2)
            print(list(loader))
        """,
        ["MPL205"],
        [
            (9, 19, "MPL205",
             "`sample` requires grad (it comes from"
             " `torch.ones(3).requires_grad_(...)`), and `Noise.__iter__` yields"
             " it to the workers of DataLoader: the default collate_fn cannot"
             " batch it in a worker (\"stack(): functions with out=... arguments"
             " don't support automatic differentiation\"); detach it, or create"
             " it without requires_grad"),
        ],
        id="requires-grad-in-iterable-dataset",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset


        class Trainer:
            def __init__(self, epochs):
                self.epochs = epochs

            def fit(self, batches):
                for _ in range(self.epochs):
                    for (batch,) in batches:
                        print(batch.sum().item())


        loader = DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4, num_workers=2)
        Trainer(2).fit(loader)
        """,
        ["MPL101"],
        [
            (16, 1, "MPL101",
             "`Trainer(2).fit()` starts processes (torch.utils.data.DataLoader"
             " `loader`, iterated in `fit`) when the module is imported, outside"
             " `if __name__ == \"__main__\":`; under spawn or forkserver every"
             " child re-imports the module and fails in its bootstrapping phase"),
        ],
        id="passed-to-a-method-of-a-class-of-the-module",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        data = TensorDataset(torch.arange(8.0))
        loader = DataLoader(data, batch_size=4, num_workers=2)


        def train(batches):
            return [batch for (batch,) in batches]


        if __name__ == "__main__":
            print(train(loader))
        """,
        ["MPL101"],
        [],
        id="iterated-only-under-guard",
    ),
    pytest.param(
        """
        import threading

        import torch
        from torch.utils.data import DataLoader, Dataset


        class Rows(Dataset):
            def __init__(self, rows):
                self.rows = sorted(rows, key=lambda row: row[0])
                self.lock = threading.Lock()

            def __len__(self):
                return len(self.rows)

            def __getitem__(self, index):
                return self.rows[index]


        class Pickled(Rows):
            def __init__(self, rows):
                super().__init__(rows)
                self.scale = lambda row: row * 2

            def __getstate__(self):
                return {"rows": self.rows}


        def main():
            for data in (Rows(torch.ones(4, 2)), Pickled(torch.ones(4, 2))):
                pass
            a = DataLoader(Rows(torch.ones(4, 2)), num_workers=2, multiprocessing_context="fork")
            b = DataLoader(Pickled(torch.ones(4, 2)), num_workers=2)
            c = DataLoader(Rows(torch.ones(4, 2)), num_workers=0)
            return a, b, c


        if __name__ == "__main__":
            main()
        """,
        ["MPL203", "MPL204"],
        [],
        id="fork-context-consumed-lambda-custom-pickling-no-workers",
    ),
    pytest.param(
        """
        import torch
        from torch.utils.data import DataLoader, Dataset


        class Points(Dataset):
            def __init__(self):
                self.points = torch.randn(16, 2, requires_grad=True)

            def __len__(self):
                return len(self.points)

            def __getitem__(self, index):
                with torch.no_grad():
                    return self.points[index] * 2


        class Raw(Points):
            def __getitem__(self, index):
                return self.points[index].clone()


        if __name__ == "__main__":
            a = DataLoader(Points(), batch_size=4, num_workers=2)
            b = DataLoader(Raw(), batch_size=4, num_workers=2, collate_fn=list)
            c = DataLoader(Raw(), batch_size=4, num_workers=0)
            d = DataLoader(Raw(), batch_size=None, num_workers=2)
            print(a, b, c, d)
        """,
        ["MPL205"],
        [],
        id="no-grad-custom-collate-no-workers-unbatched",
    ),
]


@pytest.mark.parametrize(("source", "codes", "expected"), CASES)
def test_dataloader_shapes(source: str, codes: list[str],
                           expected: list[tuple[int, int, str, str]]) -> None:
    assert findings(source, codes) == expected
