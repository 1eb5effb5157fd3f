"""Building DataLoaders for a grid case, and making sure their workers are gone afterwards.

Every loader of a run is built here, of one class: torch's DataLoader unless the run names another
that takes DataLoader's constructor (the run configuration's loader, ``loaderbench tune --loader``),
such as torchdata's StatefulDataLoader. ``use_loader`` sets it for the process.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import multiprocessing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from loaderbench import config
from loaderbench.grid import Case
from loaderbench.results import DEFAULT_LOADER

#: Seconds a worker may take to deliver one batch before the loader raises instead of hanging.
DEFAULT_TIMEOUT_S = 120.0


class LoaderClassError(ValueError):
    """A loader class that cannot be used, in one line naming it (and the argument it refused)."""


@dataclass(frozen=True)
class LoaderClass:
    """The class every loader of this process is built with, and where it comes from."""

    spec: str  # MODULE:CLASS
    cls: type
    package: str  # the distribution that provides it
    version: str | None

    @property
    def name(self) -> str:
        return self.cls.__name__

    def describe(self) -> str:
        return f"{self.spec} ({self.package} {self.version})"

    def record(self) -> dict:
        """What results store about it: the class, its package and that package's version."""
        return {"class": self.spec, "package": self.package, "version": self.version}


def resolve_loader(spec: str, option: str = config.option("loader")) -> LoaderClass:
    """The class ``spec`` (MODULE:CLASS) names, checked to take every argument DataLoader takes.

    A LoaderClassError says in one line what is wrong: no MODULE:CLASS, a module that does not
    import, a name that is not a class, a class that refuses one of DataLoader's arguments. The
    check builds it once per argument, without workers, so no process is started."""
    module_name, sep, attribute = spec.partition(":")
    where = f"{option}={spec}"
    if not (sep and module_name and attribute):
        raise LoaderClassError(f"{where}: write MODULE:CLASS, e.g. {DEFAULT_LOADER}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is that module's, named
        raise LoaderClassError(
            f"{where}: module {module_name} does not import ({_first_line(exc)})"
        ) from None
    found = getattr(module, attribute, None)
    if found is None:
        raise LoaderClassError(f"{where}: module {module_name} has no {attribute}")
    if not inspect.isclass(found):
        raise LoaderClassError(
            f"{where}: {attribute} is not a class ({type(found).__name__}); name a class "
            "that takes DataLoader's arguments"
        )
    _check_takes_dataloader_arguments(found, where)
    package = _distribution(module_name)
    return LoaderClass(spec, found, package, _version(package, module_name))


def _check_takes_dataloader_arguments(cls: type, where: str) -> None:
    """Build ``cls`` with each of DataLoader's arguments at DataLoader's default, one at a time,
    so that the argument it refuses is the one named."""
    for name, parameter in inspect.signature(DataLoader.__init__).parameters.items():
        if name in ("self", "dataset"):
            continue
        try:
            with warnings.catch_warnings():  # its warnings belong to its users' runs, not here
                warnings.simplefilter("ignore")
                cls([0], **{name: parameter.default})
        except Exception as exc:  # whatever the class raises is its refusal, reported
            raise LoaderClassError(
                f"{where}: {cls.__name__} refuses DataLoader's argument {name}="
                f"{parameter.default!r} ({_first_line(exc)})"
            ) from None


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _distribution(module_name: str) -> str:
    top = module_name.split(".")[0]
    return (importlib.metadata.packages_distributions().get(top) or [top])[0]


def _version(package: str, module_name: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # a module of the user's, not installed
        return getattr(importlib.import_module(module_name.split(".")[0]), "__version__", None)


_current: list[LoaderClass] = []  # set by use_loader; torch's DataLoader until then


def use_loader(loader: LoaderClass) -> None:
    """Build every loader of this process with ``loader`` from now on."""
    _current[:] = [loader]


def current_loader() -> LoaderClass:
    """The class loaders are built with (resolve_loader's result, or torch's DataLoader)."""
    if not _current:
        _current.append(resolve_loader(DEFAULT_LOADER))
    return _current[0]


@contextmanager
def using(loader: LoaderClass) -> Iterator[LoaderClass]:
    """Build loaders with ``loader`` inside the block, then with the class in use before it."""
    before = current_loader()
    use_loader(loader)
    try:
        yield loader
    finally:
        use_loader(before)


def make_loader(dataset, **kwargs) -> DataLoader:
    """A loader of the current class with DataLoader's arguments ``kwargs``."""
    return current_loader().cls(dataset, **kwargs)


def build_loader(
    dataset: Dataset,
    case: Case,
    *,
    persistent: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    **overrides,
) -> DataLoader:
    """A DataLoader for ``case``: the start method is always passed explicitly (never the platform
    default, which changed from fork to forkserver in Python 3.14) and worker loaders always have
    a timeout, so a hung worker becomes an error instead of a stuck job."""
    kwargs: dict[str, Any] = dict(batch_size=case.batch_size, num_workers=case.num_workers)
    if case.num_workers:
        kwargs.update(
            multiprocessing_context=multiprocessing.get_context(case.start_method),
            prefetch_factor=case.prefetch_factor,
            persistent_workers=persistent,
            in_order=case.in_order,
            timeout=timeout,  # DataLoader refuses a timeout without workers
        )
    kwargs.update(overrides)
    return make_loader(dataset, **kwargs)


def shutdown(obj) -> None:
    """Stop the worker processes behind a DataLoader (its persistent iterator) or an iterator.

    DataLoader has no public close(); relying on garbage collection leaves workers alive for an
    unknown time, and pytest-benchmark never runs a pedantic teardown under --benchmark-disable.
    """
    iterator = obj._iterator if isinstance(obj, DataLoader) else obj
    stop = getattr(iterator, "_shutdown_workers", None)
    if stop is not None:
        try:
            stop()
        except RuntimeError as exc:
            if not _aborted_on_exit(exc):
                raise
            # torch 2.13, seen here: a spawn worker asked to stop while busy with a batch
            # sometimes aborts as its interpreter exits ("terminate called without an active
            # exception"): 2 of 30 such stops in a plain-torch reproduction, 0 of 40 once the
            # epoch was drained. Its work was done, so this is reported, not failed; the other
            # workers, which torch terminated while unwinding, are reaped here.
            warnings.warn(WorkerAbortedOnExit(str(exc)), stacklevel=2)
            for worker in getattr(iterator, "_workers", []):
                worker.join(timeout=5)
    if isinstance(obj, DataLoader):
        obj._iterator = None


class WorkerAbortedOnExit(RuntimeWarning):
    """A DataLoader worker aborted while exiting at shutdown, after its work was delivered."""


def _aborted_on_exit(exc: RuntimeError) -> bool:
    return "is killed by signal: Aborted" in str(exc)


@contextmanager
def running(loader: DataLoader) -> Iterator[DataLoader]:
    """Yield ``loader``; on exit, however it is left, its persistent workers are shut down."""
    try:
        yield loader
    finally:
        shutdown(loader)


def drain(loader: DataLoader) -> tuple[int, int]:
    """Iterate one whole epoch; return (batches, samples). Nothing else happens in the loop."""
    batched = loader.batch_sampler is not None  # None exactly when automatic batching is off
    batches = samples = 0
    for batch in loader:
        batches += 1
        samples += batch_length(batch) if batched else 1
    return batches, samples


def batch_length(batch) -> int:
    """Samples in a collated batch: the length of its first tensor."""
    while isinstance(batch, (list, tuple)) and batch:
        batch = batch[0]
    if isinstance(batch, dict) and batch:
        return batch_length(next(iter(batch.values())))
    shape = getattr(batch, "shape", None)
    return int(shape[0]) if shape else 1
