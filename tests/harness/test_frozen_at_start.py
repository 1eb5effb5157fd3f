"""Tests that do not assume a fresh interpreter: test_diagnose.py in an interpreter that has
objects gc-frozen before any test starts, as one Python on a GPU machine did (375 of them).

diagnose() freezes the garbage collector while fork workers start and unfreezes it after, unless
its caller had frozen objects itself; its tests must compare with what they found, not with 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIAGNOSE = Path(__file__).with_name("test_diagnose.py")
FREEZE = "import gc\n\ngc.freeze()  # as an interpreter that froze its start-up objects would\n"


def frozen_environment(folder: Path) -> dict[str, str]:
    """The environment of a child whose interpreter runs ``folder/sitecustomize.py`` first."""
    (folder / "sitecustomize.py").write_text(FREEZE)
    path = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


@pytest.mark.processes
def test_the_diagnose_tests_pass_in_an_interpreter_that_starts_with_objects_gc_frozen(tmp_path):
    env = frozen_environment(tmp_path)
    count = subprocess.run(
        [sys.executable, "-c", "import gc; print(gc.get_freeze_count())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(count.stdout) > 0, "the sitecustomize did not run: the test would prove nothing"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(DIAGNOSE), "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
