"""Multi-rank DataLoader runs on torch.distributed.

Every rank loads its `DistributedSampler` shard through its own DataLoader (built by
`loaders.build_loader`); at the end the ranks exchange what they saw with `all_gather_object`, and
rank 0 writes it. Two ways in:

- `World` (tests and benchmarks on one machine): starts the ranks with torch.multiprocessing. The
  caller holds the rendezvous `TCPStore` on 127.0.0.1 (the OS picks a free port, so there is no
  race for it) and drives the epochs through it, so pytest-benchmark can time one epoch of the whole
  world. The process group is gloo over the loopback interface only.
- ``under_torchrun``, for `torchrun ... -m loaderbench.cli.distributed` (several machines; gloo
  or nccl): a fixed number of epochs, rendezvous from torchrun's environment, a JSON summary
  from rank 0.

Nothing may hang: the process group, the store, every DataLoader and every wait of the caller has a
timeout, and a rank that fails ends the whole run at once with that rank's traceback, after its
peers and all their DataLoader workers have been killed.
"""

from __future__ import annotations

import json
import multiprocessing.connection
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from statistics import median

import psutil
import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp
from torch.utils.data import DistributedSampler

import bench_datasets
from loaderbench.errors import InputError
from loaderbench.grid import Case
from loaderbench.measuring.loaders import build_loader, running

LOOPBACK = "127.0.0.1"
DEFAULT_TIMEOUT_S = 60.0
_PG_PREFIX = "pg"  # keeps the process group's keys apart from the epoch commands in one store


class RankFailed(RuntimeError):
    """A rank raised or died; the message carries its traceback (or exit code)."""

    def __init__(self, rank: int, detail: str):
        super().__init__(f"rank {rank} failed: {detail}")
        self.rank = rank


class WorldTimeout(RuntimeError):
    """The ranks did not report within the allotted time; all of them were killed."""


@dataclass(frozen=True)
class Fault:
    """A deliberate failure on one rank, to check that it ends the run fast instead of hanging it:
    ``raise`` an exception or ``hang`` forever once that rank has loaded ``after_batches`` batches."""

    rank: int
    kind: str = "raise"
    after_batches: int = 1

    def __post_init__(self):
        if self.kind not in ("raise", "hang"):
            raise ValueError(f"Fault.kind must be 'raise' or 'hang', got {self.kind!r}")


@dataclass(frozen=True)
class Job:
    """What every rank loads, and how: a profile's dataset, a grid case (workers, start method,
    batch size) and the DistributedSampler's settings."""

    profile: str
    case: Case
    length: int | None = None  # None: the profile's default length
    cost_scale: float = 1.0
    shuffle: bool = True
    seed: int = 0
    drop_last: bool = False
    keep_content: bool = True  # gather every sample's tensor (correctness), or ids and times only
    timeout_s: float = DEFAULT_TIMEOUT_S
    fault: Fault | None = None

    def dataset(self):
        sized = {} if self.length is None else {"length": self.length}
        return bench_datasets.make_dataset(self.profile, cost_scale=self.cost_scale, **sized)

    def sampler(self, dataset, world_size: int, rank: int) -> DistributedSampler:
        return DistributedSampler(
            dataset,
            num_replicas=world_size,
            rank=rank,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=self.drop_last,
        )

    def settings(self) -> dict:
        out = asdict(self)
        out["case"] = self.case.as_dict()
        return out


# --- the rank side --------------------------------------------------------------------------------


def _fail_here(fault: Fault, rank: int) -> None:
    if fault.kind == "raise":
        raise RuntimeError(f"deliberate fault on rank {rank} after {fault.after_batches} batch(es)")
    threading.Event().wait()  # hang: only a timeout elsewhere can end this


def load_epoch(loader, sampler, epoch: int, rank: int, job: Job, batches_before: int) -> dict:
    """One epoch of this rank: the sample ids in the order seen, their content, the seconds taken."""
    sampler.set_epoch(epoch)
    dist.barrier()  # every rank starts the epoch together, so per-rank times are comparable
    ids, content = [], []
    batches = batches_before
    start = time.perf_counter()
    for data, index in loader:
        batches += 1
        if job.fault and job.fault.rank == rank and batches == job.fault.after_batches:
            _fail_here(job.fault, rank)
        ids.extend(index.tolist())
        if job.keep_content:
            content.append(data)
    seconds = time.perf_counter() - start
    return {
        "epoch": epoch,
        "seconds": seconds,
        "batches": batches - batches_before,
        "ids": ids,
        "content": torch.cat(content) if content else None,
    }


def _epochs_from_store(store, rank: int):
    """Epoch numbers as the caller sends them ("cmd/<k>" = run or stop); each done is reported."""
    epoch = 0
    while True:
        key = f"cmd/{epoch}"
        store.wait([key])  # bounded by the store's timeout
        if store.get(key) == b"stop":
            return
        yield epoch
        store.set(f"done/{epoch}/{rank}", "1")
        epoch += 1


def serve_rank(rank: int, world_size: int, job: Job, epochs, out_path: str | None) -> list[dict]:
    """Load the epochs ``epochs`` yields on this rank, then gather every rank's records; rank 0
    writes them to ``out_path``. The process group must be initialised."""
    dataset = job.dataset()
    try:
        sampler = job.sampler(dataset, world_size, rank)
        loader = build_loader(
            dataset,
            job.case,
            persistent=job.case.num_workers > 0,
            timeout=job.timeout_s,
            sampler=sampler,
        )
        records, batches = [], 0
        with running(loader):
            for epoch in epochs:
                records.append(load_epoch(loader, sampler, epoch, rank, job, batches))
                batches += records[-1]["batches"]
        gathered: list = [None] * world_size
        dist.all_gather_object(gathered, {"rank": rank, "pid": os.getpid(), "epochs": records})
        if rank == 0 and out_path:
            torch.save(
                {"world_size": world_size, "job": job.settings(), "ranks": gathered}, out_path
            )
        return gathered
    finally:
        close = getattr(dataset, "close", None)
        if close is not None:
            close()


def _rank_main(
    rank: int, world_size: int, job: Job, port: int, ifname: str, out_path: str, start_method: str
) -> None:
    """Entry point of a rank started by `World` (torch.multiprocessing passes ``rank`` first)."""
    os.environ["GLOO_SOCKET_IFNAME"] = ifname  # gloo's own connections stay on loopback too
    if start_method == "fork":
        # An OpenMP pool the parent used does not survive fork (DataLoader workers do the same).
        torch.set_num_threads(1)
    timeout = timedelta(seconds=job.timeout_s)
    store = dist.TCPStore(LOOPBACK, port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group(
        "gloo",
        store=dist.PrefixStore(_PG_PREFIX, store),
        rank=rank,
        world_size=world_size,
        timeout=timeout,
    )
    try:
        serve_rank(rank, world_size, job, _epochs_from_store(store, rank), out_path)
        store.set(f"finished/{rank}", "1")
    finally:
        dist.destroy_process_group()


# --- the caller's side ----------------------------------------------------------------------------


def loopback_interface() -> str:
    """The name of the network interface that holds 127.0.0.1 (``lo`` on Linux)."""
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.address == LOOPBACK for a in addresses):
            return name
    raise RuntimeError(f"no network interface holds {LOOPBACK}; gloo needs a loopback interface")


@dataclass
class World:
    """``world_size`` ranks on this machine running ``job``; use as a context manager.

    ``epoch()`` runs one epoch on every rank and returns when all have finished (the body a
    benchmark times); ``finish()`` stops the ranks and returns what rank 0 wrote. Leaving the
    ``with`` block, however, kills every rank and DataLoader worker still alive.
    """

    job: Job
    world_size: int
    start_method: str = "spawn"
    epochs_run: int = 0
    left_behind: list = field(default_factory=list)  # pids alive after every rank exited by itself
    # Set by __enter__ (the stores are released again on leaving):
    _context: torch_mp.ProcessContext | None = field(default=None, repr=False)
    _store: dist.TCPStore | None = field(default=None, repr=False)
    _waiter: dist.TCPStore | None = field(default=None, repr=False)  # for blocking waits
    _dir: str | None = field(default=None, repr=False)
    _seen: dict = field(default_factory=dict, repr=False)
    _rank_pids: tuple = field(default=(), repr=False)

    def __post_init__(self):
        if self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {self.world_size}")
        if self.job.fault and not 0 <= self.job.fault.rank < self.world_size:
            raise ValueError(
                f"fault on rank {self.job.fault.rank} outside world size {self.world_size}"
            )

    @property
    def out_path(self) -> str:
        assert self._dir is not None, "only inside the with block"
        return os.path.join(self._dir, "rank0.pt")

    def __enter__(self) -> World:
        timeout = timedelta(seconds=self.job.timeout_s)
        self._store = dist.TCPStore(
            LOOPBACK, 0, is_master=True, wait_for_workers=False, timeout=timeout
        )
        self._dir = tempfile.mkdtemp(prefix="loaderbench-dist-")
        try:
            self._waiter = dist.TCPStore(
                LOOPBACK, self._store.port, is_master=False, timeout=timeout
            )
            self._context = torch_mp.start_processes(
                _rank_main,
                nprocs=self.world_size,
                join=False,
                start_method=self.start_method,
                args=(
                    self.world_size,
                    self.job,
                    self._store.port,
                    loopback_interface(),
                    self.out_path,
                    self.start_method,
                ),
            )
            self._rank_pids = tuple(self._context.pids())
            self._snapshot()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._kill_all()
        finally:
            self._release()

    def _release(self) -> None:
        """Close what the run held open: rank handles, the store's socket, files."""
        if self._context is not None:
            for process in self._context.processes:
                if process.exitcode is not None:
                    process.close()
            for path in self._context.error_files:  # written only by a rank that raised
                if path and os.path.exists(path):
                    os.unlink(path)
        self._waiter = self._store = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def rank_pids(self) -> list[int]:
        return list(self._rank_pids)

    @property
    def pids_seen(self) -> list[int]:
        """Every rank and DataLoader worker pid seen so far (to check that all are gone)."""
        return sorted(self._seen)

    def survivors(self) -> list[int]:
        """Pids of ranks and DataLoader workers seen that are still running (should be none once
        the ``with`` block is left)."""
        return [pid for pid, proc in self._seen.items() if _alive(proc)]

    def epoch(self, timeout_s: float | None = None) -> None:
        """Run one epoch on every rank; return when every rank has finished it."""
        k = self.epochs_run
        assert self._store is not None, "only inside the with block"
        self._store.set(f"cmd/{k}", "run")
        self._await([f"done/{k}/{r}" for r in range(self.world_size)], timeout_s)
        self.epochs_run += 1

    def run(self, epochs: int) -> dict:
        for _ in range(epochs):
            self.epoch()
        return self.finish()

    def finish(self, timeout_s: float | None = None) -> dict:
        """Stop the ranks after the epochs run so far; return rank 0's records (see serve_rank)."""
        self._snapshot()  # the workers are up now: survivors() can then vouch for their exit too
        assert self._store is not None and self._context is not None, "only inside the with block"
        self._store.set(f"cmd/{self.epochs_run}", "stop")
        self._await([f"finished/{r}" for r in range(self.world_size)], timeout_s)
        deadline = time.monotonic() + (timeout_s or self.job.timeout_s)
        while self._running_sentinels():
            multiprocessing.connection.wait(self._running_sentinels(), timeout=0.1)
            self._check_ranks()
            self._check_deadline(deadline, "exit")
        # A rank joins its DataLoader workers before it exits: any still running were left behind
        # (and would keep the rank's sentinel open, so look before joining).
        self.left_behind = self.survivors()
        self._context.join()
        return torch.load(self.out_path, weights_only=True)

    def _running_sentinels(self) -> list:
        assert self._context is not None, "only inside the with block"
        return [p.sentinel for p in self._context.processes if p.exitcode is None]

    def _await(self, keys: list[str], timeout_s: float | None) -> None:
        """Return once every key is set; raise the moment a rank dies, or at the timeout.

        A thread blocks in the store (on its own connection) and then signals a pipe; this thread
        waits on that pipe and on the ranks' sentinels at once: no polling, so no CPU is taken
        from the ranks and the epoch's end is seen the moment it happens.
        """
        store, waiting = self._store, self._waiter
        assert store is not None and waiting is not None, "only inside the with block"
        timeout = timeout_s or self.job.timeout_s
        deadline = time.monotonic() + timeout
        reader, writer = multiprocessing.Pipe(duplex=False)

        def wait_for_keys():
            try:
                waiting.wait(keys, timedelta(seconds=timeout))
            except dist.DistStoreError:
                pass  # the deadline below says so
            finally:
                writer.send(None)

        waiter = threading.Thread(target=wait_for_keys, name="loaderbench-await", daemon=True)
        waiter.start()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    multiprocessing.connection.wait(
                        [reader, *self._running_sentinels()], timeout=remaining
                    )
                if store.check(keys):
                    return
                self._check_ranks()
                self._check_deadline(deadline, f"report {keys[0].rsplit('/', 1)[0]}")
        finally:
            for key in keys:  # release the waiting thread however this ended
                if not store.check([key]):
                    store.set(key, "abandoned")
            waiter.join()
            reader.close()
            writer.close()

    def _check_deadline(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            self._kill_all()
            raise WorldTimeout(
                f"ranks did not {what} within the timeout; all ranks and their "
                "DataLoader workers were killed"
            )

    def _snapshot(self) -> None:
        """Remember every rank and DataLoader worker process, so that a killed rank's workers
        (re-parented away from us once it dies) can still be found and killed."""
        for pid in self.rank_pids:
            try:
                rank = psutil.Process(pid)
                family = [rank, *rank.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for proc in family:
                self._seen.setdefault(proc.pid, proc)

    def _check_ranks(self) -> None:
        assert self._context is not None, "only inside the with block"
        self._snapshot()
        if not any(p.exitcode not in (None, 0) for p in self._context.processes):
            return
        try:
            self._context.join(timeout=0, grace_period=0)  # terminates the others, raises
        except torch_mp.ProcessRaisedException as exc:
            self._kill_all()
            raise RankFailed(exc.error_index, str(exc).split("error:\n", 1)[-1].strip()) from None
        except torch_mp.ProcessExitedException as exc:
            self._kill_all()
            raise RankFailed(exc.error_index, str(exc)) from None

    def _kill_all(self) -> None:
        if self._context is None:
            return
        self._snapshot()
        family = [p for p in self._seen.values() if _alive(p)]
        for proc in family:
            try:
                proc.kill()
            except psutil.Error:
                pass
        for process in self._context.processes:
            process.join(timeout=5)  # reaps the ranks, which are our children
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.02)


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie: a killed worker whose rank died stays a zombie until init reaps
    it, which can take seconds; it holds no resources any more."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# --- several machines: torchrun ------------------------------------------------------------------


def summarise(records: dict, skip_first: bool = True) -> dict:
    """Samples/s of the world (all ranks' samples over the slowest rank's time, per epoch) and of
    each rank, as medians over the epochs (the first, warm-up, epoch left out when there are more)."""
    ranks = records["ranks"]
    epochs = len(ranks[0]["epochs"])
    timed = range(1 if skip_first and epochs > 1 else 0, epochs)
    per_rank = []
    for rank in ranks:
        rates = [len(rank["epochs"][k]["ids"]) / rank["epochs"][k]["seconds"] for k in timed]
        per_rank.append(
            {
                "rank": rank["rank"],
                "samples_per_epoch": len(rank["epochs"][0]["ids"]),
                "samples_per_s": median(rates),
                "epoch_s": median(rank["epochs"][k]["seconds"] for k in timed),
            }
        )
    world = [
        sum(len(r["epochs"][k]["ids"]) for r in ranks)
        / max(r["epochs"][k]["seconds"] for r in ranks)
        for k in timed
    ]
    return {
        "world_size": records["world_size"],
        "samples_per_s": median(world),
        "epochs_timed": len(timed),
        "per_rank": per_rank,
    }


def under_torchrun(
    job: Job, *, backend: str, epochs: int, timeout_s: float, out: Path
) -> dict | None:
    """This process as one rank of a torchrun world (its environment: RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT): ``epochs`` epochs of ``job``, the first a warm-up. Rank 0 writes
    the world's summary to ``out`` and returns it; the other ranks return None."""
    missing = [
        v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ
    ]
    if missing:
        raise InputError(
            f"{', '.join(missing)} not set: start this under torchrun (see docs/distributed.md)"
        )
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if backend == "nccl":  # collectives of objects go through the current device
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(
        backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s)
    )
    try:
        records = serve_rank(rank, world_size, job, range(epochs), None)
    finally:
        dist.destroy_process_group()
    if rank != 0:
        return None
    summary = {
        **summarise({"world_size": world_size, "ranks": records}),
        "backend": backend,
        "job": job.settings(),
        "torch": torch.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"world size {world_size}: {summary['samples_per_s']:.1f} samples/s -> {out}")
    return summary
