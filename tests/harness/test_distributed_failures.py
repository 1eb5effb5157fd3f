"""loaderbench.measuring.distributed itself: a failing or hung rank ends the run fast and leaves no process
behind, and bad input to the torchrun entry point is a one-line error with exit code 2."""

import pytest

from loaderbench.cli.distributed import main
from loaderbench.errors import EXIT_USAGE
from loaderbench.grid import Case
from loaderbench.measuring.distributed import Fault, Job, RankFailed, World, WorldTimeout

#: Long enough never to be what ends a test that expects a rank's own error instead.
PATIENT_S = 60.0


def faulty_job(fault: Fault, *, timeout_s: float = PATIENT_S) -> Job:
    # Two workers per rank, so that the ranks have DataLoader workers to leave behind.
    return Job(
        "noop", Case("noop", 2, "fork", batch_size=8), length=64, fault=fault, timeout_s=timeout_s
    )


def assert_nothing_left(world: World) -> None:
    ranks = set(world.rank_pids)
    assert set(world.pids_seen) - ranks, "no DataLoader worker was ever seen: nothing was tested"
    assert not world.survivors(), f"still alive: {world.survivors()}"


@pytest.mark.processes
@pytest.mark.distributed
def test_a_rank_that_raises_fails_the_run_with_its_error_and_kills_every_process():
    """Spawned ranks: rank 1 raises after one batch; the caller gets rank 1's own traceback (not a
    timeout), and rank 0, both ranks' DataLoader workers, everything is gone."""
    with pytest.raises(RankFailed, match="deliberate fault on rank 1") as failure:
        with World(faulty_job(Fault(rank=1, kind="raise")), 2, start_method="spawn") as world:
            world.run(epochs=1)
    assert failure.value.rank == 1
    assert "Traceback" in str(failure.value)
    assert_nothing_left(world)


@pytest.mark.processes
@pytest.mark.distributed
def test_a_hung_rank_times_out_the_caller_and_every_process_is_killed():
    """Rank 1 hangs in its second epoch; the caller's wait for that epoch gives up after its
    timeout and kills the ranks and their workers."""
    # 64 samples / 2 ranks / batch 8 = 4 batches an epoch: batch 5 is the second epoch's first.
    with pytest.raises(WorldTimeout, match="done/1"):
        with World(
            faulty_job(Fault(rank=1, kind="hang", after_batches=5)), 2, start_method="fork"
        ) as world:
            world.epoch()
            world.epoch(timeout_s=2)
    assert_nothing_left(world)


@pytest.mark.processes
@pytest.mark.distributed
def test_a_rank_waiting_on_a_hung_peer_gives_up_on_its_own():
    """With a patient caller, the healthy rank's own wait (for the next epoch, which cannot come)
    ends at the job's timeout: the rank fails instead of waiting forever."""
    job = faulty_job(Fault(rank=1, kind="hang", after_batches=1), timeout_s=2)
    with pytest.raises(RankFailed, match="(?i)timeout|timed out") as failure:
        with World(job, 2, start_method="fork") as world:
            world.epoch(timeout_s=PATIENT_S)
    assert failure.value.rank == 0
    assert_nothing_left(world)


def test_world_refuses_an_empty_world_or_a_fault_on_a_missing_rank():
    job = faulty_job(Fault(rank=2))
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        World(job, 0)
    with pytest.raises(ValueError, match="fault on rank 2 outside world size 2"):
        World(job, 2)
    with pytest.raises(ValueError, match="Fault.kind"):
        Fault(rank=0, kind="crash")


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT not set: start this under torchrun"),
        (["--profile", "nope"], "--profile 'nope' is unknown; valid: noop"),
        (["--epochs", "0"], "--epochs >= 1"),
    ],
    ids=["outside-torchrun", "unknown-profile", "no-epochs"],
)
def test_the_torchrun_entry_point_rejects_bad_input_in_one_line(argv, message, capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
