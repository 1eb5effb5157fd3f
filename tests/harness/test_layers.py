"""The package's shape: imports point one way between its folders, and the commands that only read
results start without torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_results import CPU_W0, CPU_W2, JITTER, merged, results, scaled

import bench_datasets
from loaderbench import grid

PACKAGE = Path(__file__).resolve().parents[2] / "loaderbench"

#: Bottom to top: a module may import from its own layer or any layer below it, never above.
LAYERS = {
    "foundation": 0,  # errors, storage, results, grid, config, machine, runner, durations
    "measuring": 1,
    "judging": 2,
    "paired": 3,
    "presenting": 4,
    "tuning": 5,
    "suite": 5,
    "cli": 5,
    "api": 5,  # loaderbench/__init__.py and __main__.py: the public entry points
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "loaderbench":
        raise ValueError(module)
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return "api"
    return parts[1] if parts[1] in LAYERS else "foundation"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) of every loaderbench import in ``path``, lazy ones inside functions too."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return [(line, m) for line, m in found if m == "loaderbench" or m.startswith("loaderbench.")]


def upward_imports(root: Path = PACKAGE) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        own = layer_of(module_name(path, root))
        for line, imported in imports_of(path, root):
            if imported == "loaderbench":
                continue  # the package itself (its version); its entry points are not reached
            if LAYERS[layer_of(imported)] > LAYERS[own]:
                wrong.append(f"{path.relative_to(root.parent)}:{line} ({own}) imports {imported}")
    return wrong


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_layer_check_finds_an_upward_import(tmp_path):
    package = tmp_path / "loaderbench"
    (package / "judging").mkdir(parents=True)
    (package / "judging" / "stored_numbers.py").write_text(
        "def f():\n    from loaderbench.presenting import report\n"
    )
    assert upward_imports(package) == [
        "loaderbench/judging/stored_numbers.py:2 (judging) imports loaderbench.presenting"
    ]


def test_the_grid_knows_the_profiles_without_importing_them():
    """grid.py spells out the profile names so that reading results needs no torch."""
    assert grid.ALL_PROFILES == tuple(bench_datasets.PROFILES)
    assert grid.USER_PROFILE == bench_datasets.USER_PROFILE


READ_ONLY_COMMANDS = """
import sys
from loaderbench.cli import build_parser, main
build_parser()
codes = [main(["table", sys.argv[1]]), main(["gate", sys.argv[2], sys.argv[1], "--markdown", sys.argv[3]])]
heavy = sorted(m for m in ("torch", "matplotlib") if m in sys.modules)
print(codes, heavy)
"""


@pytest.mark.processes
def test_the_commands_that_read_results_import_no_torch(tmp_path):
    current, baseline = tmp_path / "current.json", tmp_path / "baseline.json"
    current.write_text(json.dumps(results({CPU_W0: JITTER, CPU_W2: scaled(JITTER, 0.5)})))
    runs = [results({CPU_W0: scaled(JITTER, f), CPU_W2: scaled(JITTER, f / 2)}) for f in (1, 1.02)]
    baseline.write_text(json.dumps(merged(runs)))
    done = subprocess.run(
        [sys.executable, "-c", READ_ONLY_COMMANDS, current, baseline, tmp_path / "v.md"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[0, 0] []", done.stdout


def option_spellings(root: Path = PACKAGE) -> list[str]:
    """Where a string of the package begins with an ``--lb-`` option name (an f-string's first
    part counts), outside the run configuration (config.py)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            first = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
            if isinstance(first, ast.Constant) and str(first.value).startswith("--lb-"):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return sorted(set(found))


def test_only_the_run_configuration_spells_an_lb_option():
    """Every ``--lb-*`` option is parsed, checked and written back in config.py alone: a second
    spelling elsewhere is a second parser waiting to disagree with it."""
    assert option_spellings() == []


def test_the_spelling_check_finds_an_option_spelled_elsewhere(tmp_path):
    package = tmp_path / "loaderbench"
    package.mkdir()
    (package / "config.py").write_text('NAME = "--lb-grid"\n')
    (package / "side.py").write_text('def f(x):\n    return [f"--lb-grid={x}", "--lb-"]\n')
    assert option_spellings(package) == ["loaderbench/side.py:2"]


#: What only a command builds or reads: an argparse parser and the Namespace it gives.
COMMAND_LINE_CALLS = (
    "add_argument",
    "add_argument_group",
    "add_parser",
    "parse_args",
    "parse_known_args",
    "add_mutually_exclusive_group",
)


def command_line_code(root: Path = PACKAGE) -> list[str]:
    """Where a module outside cli/ imports argparse or builds or reads an argparse parser."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if (root / "cli") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and node.attr in COMMAND_LINE_CALLS:
                names = ["argparse"]
            if "argparse" in names:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return sorted(set(found))


def test_only_the_commands_build_or_read_a_command_line():
    """Every command lives in cli/ and hands typed values down (cli/options.py): a parser or a
    Namespace below it is a command's job done in a library."""
    assert command_line_code() == []


def test_the_command_line_check_finds_a_parser_outside_cli(tmp_path):
    package = tmp_path / "loaderbench"
    (package / "cli").mkdir(parents=True)
    (package / "cli" / "ab.py").write_text(
        "import argparse\nargparse.ArgumentParser().add_argument('x')\n"
    )
    (package / "engine.py").write_text("from argparse import Namespace\n")
    (package / "side.py").write_text("def f(parser):\n    parser.add_argument('--x')\n")
    assert command_line_code(package) == ["loaderbench/engine.py:1", "loaderbench/side.py:2"]
