"""Turning file-descriptor exhaustion into advice about torch's tensor sharing strategy.

Under the ``file_descriptor`` strategy (Linux's default) every tensor a worker sends keeps one
descriptor open in the main process for as long as the tensor lives, so code that keeps many
batches (or many tensors per sample) hits ``ulimit -n``. Depending on where the limit bites,
torch raises "Too many open files", "received 0 items of ancdata" or a bare EMFILE OSError; all
of them mean the same thing and have the same two remedies.
"""

from __future__ import annotations

import errno
import resource
from collections.abc import Iterator
from contextlib import contextmanager

import torch.multiprocessing

_SYMPTOMS = ("Too many open files", "received 0 items of ancdata")


class DescriptorExhaustion(RuntimeError):
    """Ran out of file descriptors while tensors were shared with DataLoader workers."""


def is_fd_exhaustion(exc: BaseException) -> bool:
    """True when ``exc`` or anything in its cause/context chain says descriptors ran out."""
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError) and link.errno in (errno.EMFILE, errno.ENFILE):
            return True
        if any(symptom in str(link) for symptom in _SYMPTOMS):
            return True
        link = link.__cause__ or link.__context__
    return False


def advice() -> str:
    """One line: what ran out, under which strategy and limit, and the two ways out."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    strategy = torch.multiprocessing.get_sharing_strategy()
    return (
        f"out of file descriptors (ulimit -n is {soft}) while DataLoader workers shared "
        f"tensors under the {strategy!r} sharing strategy, which holds one descriptor per "
        "live tensor: call torch.multiprocessing.set_sharing_strategy('file_system') before "
        "building loaders, or raise the limit (ulimit -n 65536)"
    )


@contextmanager
def explain_fd_exhaustion() -> Iterator[None]:
    """Re-raise descriptor exhaustion as DescriptorExhaustion with advice(); anything else as is."""
    try:
        yield
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, DescriptorExhaustion) or not is_fd_exhaustion(exc):
            raise
        raise DescriptorExhaustion(advice()) from exc
