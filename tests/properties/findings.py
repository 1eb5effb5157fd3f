"""What loader classes other than torch's DataLoader do differently (docs/loaders.md).

``FINDINGS``: the properties a loader class breaks, by class and test name, each with its
minimal reproduction. Under that ``--lb-loader`` they are expected to fail (``xfail``, strict, so
that a fix upstream turns them red; conftest.py marks them), and each has an explicit example that
fails every time.
"""

STATEFUL = "torchdata.stateful_dataloader:StatefulDataLoader"
STATEFUL_MISSING = (
    "torchdata is not installed: pip install 'loaderbench[stateful]' (make venv does)"
)

#: torchdata 0.11.0: a seeded shuffle follows num_workers (property 8).
STATEFUL_SHUFFLE_FOLLOWS_WORKERS = (
    "StatefulDataLoader(range(12), batch_size=4, shuffle=True, "
    "generator=torch.Generator().manual_seed(7)): num_workers=0 gives "
    "[[3, 4, 0, 5], [7, 9, 11, 6], [8, 1, 10, 2]], num_workers=1 or 2 (fork) "
    "[[9, 5, 2, 3], [4, 7, 6, 8], [1, 11, 0, 10]]; its RandomSampler draws its permutation "
    "when iterated, and its workers' iterator iterates the sampler twice at start, so with "
    "workers the generator gives one permutation more before epoch 1 (torchdata 0.11.0)"
)

#: torchdata 0.11.0: without workers, the epoch after a resumed one is not the uninterrupted
#: run's (property 9; test_resume.py compares a map-style resume without workers up to the end
#: of the epoch it resumed in, and holds this with an explicit test).
STATEFUL_NEXT_EPOCH_AFTER_RESUME = (
    "StatefulDataLoader(list(range(3)), batch_size=1, shuffle=True, "
    "generator=torch.Generator().manual_seed(0)), num_workers=0: uninterrupted epochs "
    "[[2, 0, 1], [1, 2, 0]]; state_dict() after the first batch, a fresh loader, "
    "load_state_dict(): the rest of epoch 1 is [0, 1] as it should be, epoch 2 is [2, 1, 0]; "
    "with 2 fork workers it is [1, 2, 0]"
)

FINDINGS = {
    STATEFUL: {
        name: STATEFUL_SHUFFLE_FOLLOWS_WORKERS
        for name in (
            "test_the_same_generator_gives_the_same_epochs_whatever_the_workers",
            "test_the_same_generator_gives_the_same_epochs_with_spawn_and_forkserver",
        )
    },
}
