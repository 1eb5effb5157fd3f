"""`loaderbench tune`: the DataLoader settings for your own dataset, found by experiment on this
machine, with the evidence and the usual worker bugs diagnosed.

    from loaderbench.tuning import tune
    result = tune(my_dataset, batch_size=64, step_ms=20)
    print(result.snippet())

The order of work: diagnoses first (diagnose.py: a dataset whose workers crash, hang or raise
cannot be tuned, one that cannot be pickled is tuned without spawn and forkserver), then the
search (search.py), whose decisions all come from settings measured side by side (contest.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["tune", "TuneResult", "Candidate", "DEFAULT_OUT"]


def __getattr__(name: str):
    # torch loads on first use (matplotlib when tune.png is drawn): `loaderbench --help` must not
    # wait for them.
    if name == "TuneResult":
        from loaderbench.tuning.result import TuneResult

        return TuneResult
    if name == "Candidate":
        from loaderbench.tuning.contest import Candidate

        return Candidate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_OUT = Path("results/tune")
#: Restarting workers costing at least this share of an epoch makes keeping them worth their memory.
PERSISTENT_SHARE = 0.01


def sleep_step(ms: float, device=None) -> Callable:
    """A simulated training step of ``ms`` milliseconds per batch (overlap.py's wait step): the
    batch goes to the device, then the step waits, releasing the GIL as torch kernels do."""
    import torch

    from loaderbench.measuring.overlap import synchronize, to_device

    device = torch.device(device or "cpu")
    seconds = ms / 1000

    def step(batch) -> None:
        to_device(batch, device, non_blocking=True)
        synchronize(device)
        time.sleep(seconds)

    return step


def tune(
    dataset,
    *,
    batch_size: int = 64,
    collate_fn: Callable | None = None,
    step: Callable | None = None,
    step_ms: float | None = None,
    device: str | None = None,
    budget_s: float = 300.0,
    min_effect: float = 0.05,
    max_workers: int | None = None,
    seconds_per_setting: float = 12.0,
    start_methods: tuple[str, ...] | None = None,
    prefetch_factors: str | tuple = (2, 4),
    diagnose: bool = True,
    name: str | None = None,
    show: Callable[[str], None] | None = None,
    worker_init_fn: Callable | None = None,
    worker_init_name: str | None = None,
    loader: str | type | None = None,
):
    """Find the DataLoader settings for ``dataset`` on this machine: a TuneResult (result.py).

    ``step`` (a callable taking a batch) or ``step_ms`` (a simulated step) is the training step
    loading should keep up with; ``device`` defaults to cuda when there is one (then pinning is
    tried too). ``budget_s`` bounds the search; Ctrl-C returns what was measured so far, marked
    interrupted. ``seconds_per_setting``: how long each setting of a contest may be measured
    (a contest stops sooner once it has answered its question; one that asks a single question
    gets a third of it). ``prefetch_factors``: those tried at the chosen worker count (2, the
    default, is always the reference). ``worker_init_fn`` goes to every loader with workers,
    the diagnoses' included (``worker_init_name`` is how the printed call names it).
    ``loader``: the loader class to tune, a class that takes DataLoader's arguments or its
    ``"MODULE:CLASS"`` (default: the class in use, torch's DataLoader unless ``--lb-loader`` or
    ``--loader`` chose another); the printed call and tune.json name it.
    """
    import sys

    import torch

    from loaderbench import machine
    from loaderbench.measuring.loaders import using
    from loaderbench.tuning.contest import Candidate
    from loaderbench.tuning.result import TuneResult
    from loaderbench.tuning.search import Search, plan_workload

    if step is not None and step_ms is not None:
        raise ValueError("give a step or step_ms, not both")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    show = show or (lambda line: print(line, file=sys.stderr, flush=True))
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if step_ms is not None:
        if step_ms <= 0:
            raise ValueError(f"step_ms must be > 0, got {step_ms}")
        step = sleep_step(step_ms, target)
    settings = _settings(
        budget_s, min_effect, max_workers, start_methods, prefetch_factors, seconds_per_setting
    )
    started = time.monotonic()
    chosen = _loader_class(loader)

    def answer(pick, persistent: bool, decisions: list, **measured: Any) -> TuneResult:
        return TuneResult(
            name or type(dataset).__name__,
            batch_size,
            str(target),
            pick,
            persistent,
            decisions,
            alpha=settings.alpha,
            machine=machine.fingerprint().to_dict(),
            loader=chosen,
            min_effect=min_effect,
            worker_init_fn=worker_init_name
            or (getattr(worker_init_fn, "__qualname__", None) if worker_init_fn else None),
            seconds=time.monotonic() - started,
            **measured,
        )

    with using(chosen):  # every loader measured, the diagnoses' included
        found = (
            _diagnoses(dataset, show, collate_fn, batch_size, worker_init_fn) if diagnose else []
        )
        if any(d.blocks_workers for d in found):
            reason = "workers cannot load this dataset (see the diagnoses); fix that first"
            return answer(
                Candidate(0), False, [_decision("num_workers", 0, reason)], diagnoses=found
            )
        workload = plan_workload(
            dataset,
            batch_size=batch_size,
            collate_fn=collate_fn,
            step=step,
            device=target,
            round_s=settings.round_s,
            worker_init_fn=worker_init_fn,
        )
        search = Search(
            workload, settings, spawn_ok=not any(d.blocks_spawn for d in found), show=show
        )
        search.started = started
        outcome = search.run()
        entry = _pick_entry(outcome.pick, outcome.contests)
        keep, why, epoch = _persistence(outcome.pick, entry, workload, dataset)
        growth = entry.growth_per_worker_mb if entry and outcome.pick.num_workers else None
        if diagnose and growth is not None:
            from loaderbench.tuning.diagnose import copy_on_read

            grown = copy_on_read(dataset, growth)
            if grown is not None and all(d.code != grown.code for d in found):
                found.append(grown)
        return answer(
            outcome.pick,
            keep,
            [*outcome.decisions, *([why] if why else [])],
            diagnoses=found,
            contests=outcome.contests,
            bottleneck=outcome.bottleneck,
            notes=outcome.notes,
            interrupted=outcome.interrupted,
            load_ms_per_batch=_ms(outcome.load_s_per_batch),
            step_ms_per_batch=_ms(outcome.step_s_per_batch),
            default_epoch=epoch,
        )


def _settings(
    budget_s, min_effect, max_workers, start_methods, prefetch_factors, seconds_per_setting
):
    """The search's Settings from tune's arguments (a ValueError says which one is wrong)."""
    import multiprocessing
    import os

    from loaderbench.tuning.search import Settings

    if budget_s <= 0:
        raise ValueError(f"the budget must be > 0 seconds, got {budget_s}")
    return Settings(
        budget_s=budget_s,
        min_effect=min_effect,
        max_workers=max_workers if max_workers is not None else 2 * len(os.sched_getaffinity(0)),
        start_methods=start_methods or tuple(multiprocessing.get_all_start_methods()),
        prefetch_factors=_prefetch_factors(prefetch_factors),
        seconds_per_contestant=seconds_per_setting,
        question_s_per_contestant=seconds_per_setting / 3,
    )


def _diagnoses(dataset, show, collate_fn, batch_size, worker_init_fn) -> list:
    """The dataset's diagnoses (diagnose.py), each shown as it is found."""
    from loaderbench.tuning.diagnose import diagnose

    show(
        "loaderbench tune: diagnosing the dataset (determinism, worker random state, "
        "sharding, pickling, worker crashes and hangs, memory per worker)"
    )
    found = diagnose(
        dataset, collate_fn=collate_fn, batch_size=batch_size, worker_init_fn=worker_init_fn
    )
    for diagnosis in found:
        show(f"  {diagnosis.code}: {diagnosis.message()}")
    return found


def _loader_class(loader):
    """The LoaderClass for tune's ``loader`` argument (checked as --lb-loader checks it; a
    LoaderClassError, a ValueError, says in one line what is wrong)."""
    from loaderbench.measuring.loaders import current_loader, resolve_loader

    if loader is None:
        return current_loader()
    if isinstance(loader, type):
        loader = f"{loader.__module__}:{loader.__qualname__}"
    if not isinstance(loader, str):
        raise ValueError(f"loader must be a class or 'MODULE:CLASS', got {loader!r}")
    return resolve_loader(loader, option="loader")


def _prefetch_factors(value) -> tuple[int, ...]:
    if isinstance(value, str):
        try:
            value = tuple(int(v) for v in value.split(",") if v.strip())
        except ValueError:
            raise ValueError(
                f"prefetch factors must be whole numbers, e.g. 2,4; got {value!r}"
            ) from None
    if not value or any(v < 1 for v in value):
        raise ValueError(f"prefetch factors must be >= 1, got {value!r}")
    return tuple(value)


#: Whole epochs of a default loader timed to decide persistent_workers (their medians count).
DEFAULT_EPOCHS = 3


def default_epoch(workload, candidate, dataset, epochs: int = DEFAULT_EPOCHS) -> dict:
    """A default loader's epoch (``persistent_workers=False``) with ``candidate``'s settings,
    timed whole by measuring.measure.timed_epoch ``epochs`` times: the medians of its start
    (``iter()`` to the first batch, workers starting), steady part and shutdown (the workers
    stopping), over the workload's samples; and the epoch scaled to the whole dataset (the
    steady part per sample times its length, start and shutdown once)."""
    import statistics

    from loaderbench.measuring.loaders import shutdown
    from loaderbench.measuring.measure import EPOCH_PHASES, timed_epoch

    loader = workload.loader(candidate, persistent=False)
    runs = []
    try:
        for _ in range(epochs):
            phases, _, samples = timed_epoch(loader)
            runs.append((phases, samples))
    finally:
        shutdown(loader)
    record: dict = {
        name: statistics.median(phases[name] for phases, _ in runs) for name in EPOCH_PHASES
    }
    timed = runs[0][1]
    record.update(samples=timed, dataset_samples=len(dataset), epochs=epochs)
    restart = record["start_s"] + record["shutdown_s"]
    record["restart_s"] = restart
    record["epoch_s"] = restart + record["steady_s"] * len(dataset) / max(timed, 1)
    return record


def _persistence(pick, entry, workload, dataset):
    """Whether to keep workers between epochs: when a default loader's restart (its epoch's start
    and shutdown, measured over whole epochs, default_epoch) costs at least PERSISTENT_SHARE of
    that epoch; an iterable dataset's are kept. The answer, the decision that says why (None
    without workers) and the default epoch measured (None when none was)."""
    from loaderbench.tuning.contest import median_of
    from loaderbench.tuning.result import workers_text

    if not pick.num_workers:
        return False, None, None
    if not workload.iterable:
        epoch = default_epoch(workload, pick, dataset)
        share = epoch["restart_s"] / epoch["epoch_s"] if epoch["epoch_s"] else 0.0
        keep = share >= PERSISTENT_SHARE
        verdict = "keep them" if keep else "not worth holding their memory between epochs"
        scaled = (
            ""
            if epoch["samples"] == epoch["dataset_samples"]
            else f" (scaled from {epoch['samples']} of its {epoch['dataset_samples']} samples)"
        )
        reason = (
            f"a default loader's epoch with {workers_text(pick.num_workers)} "
            f"(median of {epoch['epochs']}): start {epoch['start_s']:.2f} s, steady "
            f"{epoch['steady_s']:.2f} s, shutdown {epoch['shutdown_s']:.2f} s; "
            f"restarting costs {epoch['restart_s']:.2f} s, {share:.1%} of an epoch of "
            f"about {epoch['epoch_s']:.1f} s{scaled}: {verdict}"
        )
        return keep, _decision("persistent_workers", keep, reason), epoch
    # An iterable dataset's epoch has no length to scale a default epoch to: its workers are kept,
    # with the restart its first batch showed.
    first = median_of(entry.first_batch_s) if entry else None
    reason = (
        f"restarting the workers costs {first:.2f} s per epoch"
        if first
        else "workers start once instead of every epoch"
    )
    return True, _decision("persistent_workers", True, reason), None


def _pick_entry(pick, contests):
    """The latest contest's entry for the pick (or for its worker count and start method)."""
    for contest in reversed(contests):
        for entry in contest.entries:
            if entry.contestant == pick:
                return entry
    for contest in reversed(contests):
        for entry in contest.entries:
            c = entry.contestant
            if (
                getattr(c, "start_method", None) == pick.start_method
                and c.num_workers == pick.num_workers
            ):
                return entry
    return None


def _decision(setting, value, reason):
    from loaderbench.tuning.search import Decision

    return Decision(setting, value, reason)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


#: The exhaustive experiment `tune --sweep` compares the search with: every worker count 0-4.
SWEEP_COUNTS = (0, 1, 2, 3, 4)


def compare_with_sweep(
    result,
    dataset,
    *,
    batch_size: int,
    collate_fn: Callable | None = None,
    worker_init_fn: Callable | None = None,
    min_effect: float = 0.05,
) -> None:
    """Measure every worker count of SWEEP_COUNTS side by side in one contest and record in
    ``result`` how close its pick came (``result.sweep``); interrupted, the search's answer
    stands and ``result`` says so."""
    import sys

    from loaderbench.tuning.search import Settings, plan_workload, sweep

    settings = Settings(min_effect=min_effect)
    try:
        workload = plan_workload(
            dataset,
            batch_size=batch_size,
            collate_fn=collate_fn,
            round_s=settings.round_s,
            worker_init_fn=worker_init_fn,
        )
        contest = sweep(
            workload,
            settings,
            list(SWEEP_COUNTS),
            show=lambda line: print(f"  {line}", file=sys.stderr, flush=True),
        )
    except KeyboardInterrupt:
        contest = None
    if contest is None or contest.stopped == "interrupted":
        result.interrupted = True
        result.notes.append("interrupted during the sweep; no comparison with it")
    else:
        result.compare_with_sweep(contest)
