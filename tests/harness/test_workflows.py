"""The CI workflows: valid for GitHub, clean under zizmor, and safe by this project's own rules.

Each rule is a function returning the problems it finds, so the tests below can also show that
every rule catches the mistake it exists for, on a deliberately broken copy of the real workflow.
"""

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
CI, GPU = GITHUB / "workflows" / "ci.yml", GITHUB / "workflows" / "gpu.yml"
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
GPU_RUNNER = ["self-hosted", "linux", "x64", "gpu"]
#: Triggers that run code from a pull request, or a workflow started by one, on the runner.
PULL_REQUEST_TRIGGERS = {"pull_request", "pull_request_target", "workflow_run"}
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
LOCAL = re.compile(r"(\./|\$/)[\w./-]+")  # this repository's own actions, at the run's commit
DOCKER_PINNED = re.compile(r"docker://[^@\s]+@sha256:[0-9a-f]{64}")


def load(path):
    return YAML(typ="safe").load(path.read_text())  # YAML 1.2: `on` stays a string key


def tool(name):
    """A command-line tool of the `test` extra, from this interpreter's environment first."""
    found = Path(sys.executable).with_name(name)
    path = str(found) if found.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make test` installs it (pip install -e '.[test]')")
    return path


# --- the rules -----------------------------------------------------------------------------------


def triggers(workflow) -> set[str]:
    on = workflow["on"]
    return {on} if isinstance(on, str) else set(on)


def pull_request_triggers(workflow) -> list[str]:
    return sorted(triggers(workflow) & PULL_REQUEST_TRIGGERS)


def permission_problems(workflow) -> list[str]:
    """Read-only everywhere: a top-level block granting at most read, and no job granting more."""
    problems = []
    top = workflow.get("permissions")
    if not isinstance(top, dict):
        problems.append(
            f"top-level permissions is {top!r}, expected a mapping such as {{contents: read}}"
        )
    scopes = [("workflow", top)] + [
        (f"job {name}", job.get("permissions")) for name, job in workflow["jobs"].items()
    ]
    for where, granted in scopes:
        if isinstance(granted, str):
            problems.append(f"{where}: permissions {granted!r} (name each scope instead)")
        elif isinstance(granted, dict):
            problems += [
                f"{where}: {scope}: {level}"
                for scope, level in granted.items()
                if level not in ("read", "none")
            ]
    return problems


def uses_of(node):
    """Every `uses:` value anywhere in a workflow or action document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from uses_of(value)
    elif isinstance(node, list):
        for item in node:
            yield from uses_of(item)


def unpinned_uses(document) -> list[str]:
    return [
        ref
        for ref in uses_of(document)
        if not (PINNED.fullmatch(ref) or LOCAL.fullmatch(ref) or DOCKER_PINNED.fullmatch(ref))
    ]


def unlabelled_pins(text) -> list[str]:
    """Lines pinning a commit without the version tag it stands for (`# v6.0.1`) beside it."""
    return [
        line.strip()
        for line in text.splitlines()
        if re.search(r"uses:\s*\S+@[0-9a-f]{40}", line)
        and not re.search(r"@[0-9a-f]{40}\s+#\s*v\d", line)
    ]


def steps_of(document):
    jobs = document.get("jobs") or {}
    for job in jobs.values():
        yield from job.get("steps") or []
    yield from (document.get("runs") or {}).get("steps") or []  # a composite action


def interpolated_scripts(document) -> list[str]:
    """`run:` scripts with a ${{ }} expression in them: values must reach scripts through env:,
    where the shell treats them as data, never pasted into the script's text."""
    return [
        step.get("name") or step["run"][:60]
        for step in steps_of(document)
        if "run" in step and "${{" in step["run"]
    ]


def credential_keeping_checkouts(document) -> list[str]:
    return [
        step["uses"]
        for step in steps_of(document)
        if step.get("uses", "").startswith("actions/checkout@")
        and (step.get("with") or {}).get("persist-credentials") is not False
    ]


def gpu_exclusivity_problems(workflow) -> list[str]:
    """One GPU: one concurrency group for every ref and event, and a run in progress is not
    cancelled (a half-finished benchmark leaves nothing to compare)."""
    group = workflow.get("concurrency") or {}
    problems = []
    if not isinstance(group, dict) or not isinstance(group.get("group"), str):
        return [f"concurrency is {group!r}, expected a mapping with a fixed group"]
    if "${{" in group["group"]:
        problems.append(f"concurrency group {group['group']!r} varies between runs")
    if group.get("cancel-in-progress") is not False:
        problems.append("cancel-in-progress must be false")
    return problems


def makefile_torch() -> str:
    (pin,) = re.findall(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    return pin


# --- the real workflows --------------------------------------------------------------------------


@pytest.mark.processes
def test_workflows_and_actions_match_githubs_schemas():
    for schema, files in (
        ("vendor.github-workflows", [CI, GPU]),
        ("vendor.github-actions", ACTIONS),
    ):
        done = subprocess.run(
            [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def zizmor_findings(github: Path) -> list[dict]:
    done = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--persona",
            "auditor",
            "--format",
            "json",
            "--no-progress",
            str(github),
        ],
        capture_output=True,
        text=True,
        cwd=github.parent,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings or done.returncode == 0, done.stderr
    return findings


@pytest.mark.processes
def test_zizmor_at_its_strictest_finds_nothing_unexplained():
    """Every finding is fixed, or ignored in .github/zizmor.yml with its reason."""
    findings = zizmor_findings(GITHUB)
    assert findings == [], [(f["ident"], f["desc"]) for f in findings]


def test_the_gpu_workflow_is_never_triggered_by_pull_requests():
    gpu = load(GPU)
    assert pull_request_triggers(gpu) == []
    assert triggers(gpu) == {"push", "schedule", "workflow_dispatch"}
    assert gpu["on"]["push"] == {"branches": ["main"]}


def test_the_gpu_job_runs_alone_on_the_gpu_runner():
    gpu = load(GPU)
    assert [job["runs-on"] for job in gpu["jobs"].values()] == [GPU_RUNNER]
    assert gpu_exclusivity_problems(gpu) == []
    assert gpu["env"]["LOADERBENCH_RUNNER"] == "gpu"


@pytest.mark.parametrize("path", [CI, GPU], ids=lambda p: p.name)
def test_permissions_are_read_only(path):
    workflow = load(path)
    assert permission_problems(workflow) == []
    assert workflow["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("path", [CI, GPU, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.name)
def test_actions_are_pinned_by_commit_with_their_tag_named(path):
    document = load(path)
    assert list(uses_of(document)), "no uses: found: the rule would pass vacuously"
    assert unpinned_uses(document) == []
    assert unlabelled_pins(path.read_text()) == []


@pytest.mark.parametrize("path", [CI, GPU, *ACTIONS], ids=lambda p: p.parent.name + "/" + p.name)
def test_no_expression_is_pasted_into_a_script(path):
    document = load(path)
    assert any("run" in step for step in steps_of(document))
    assert interpolated_scripts(document) == []
    assert credential_keeping_checkouts(document) == []


@pytest.mark.parametrize("path", [CI, GPU], ids=lambda p: p.name)
def test_workflows_install_the_torch_the_makefile_pins(path):
    assert load(path)["env"]["TORCH"] == makefile_torch()


def test_ci_tests_every_supported_python_and_judges_time_side_by_side():
    """A hosted runner is never a committed baseline's machine: stored numbers judge only the
    ratios that hold across machines there (the gate finds that itself), and every time row is
    measured side by side against the baseline's recipe, on the recipe's Python."""
    ci = load(CI)
    matrix = ci["jobs"]["test"]["strategy"]["matrix"]
    pythons = set(matrix["python"]) | {entry["python"] for entry in matrix.get("include", [])}
    assert {"3.10", "3.12", "3.14"} <= pythons
    gates = [
        step["run"]
        for job in ci["jobs"].values()
        for step in job["steps"]
        if "loaderbench gate" in step.get("run", "")
    ]
    assert gates and all(re.search(r"--side-by-side [1-9]", run) for run in gates)
    assert not any("--only" in run for run in gates)
    recorded = [
        json.loads(path.read_text())["loaderbench"]["baseline"].get("recipe")
        for path in (ROOT / "baselines" / "cpu").rglob("*.json")
    ]
    pythons = {".".join(r["python"].split(".")[:2]) for r in recorded if r}
    assert pythons
    for job in ci["jobs"].values():
        if any("loaderbench gate" in step.get("run", "") for step in job["steps"]):
            venv = next(s for s in job["steps"] if s.get("uses", "").endswith("cpu-venv"))
            assert venv["with"]["python-version"] in pythons


def test_ci_runs_the_suite_at_every_declared_floor_with_the_floor_torch():
    """The lowest-versions job: `make floors` on push and pull request, its torch read from
    .ci/floors.txt (the CPU build), not the pin that the other jobs install."""
    job = load(CI)["jobs"]["floors"]
    runs = [step.get("run", "") for step in job["steps"]]
    assert job["if"] == "github.event_name != 'schedule'"
    assert runs[-1] == "make floors"
    assert any(".ci/floors.txt" in run and "download.pytorch.org/whl/cpu" in run for run in runs)


@pytest.mark.parametrize("path", [CI, GPU], ids=lambda p: p.name)
def test_every_gate_confirms_and_its_report_shows_that_verdict(path):
    """A regression fails a job only after fresh reruns confirm it; the report written after the
    gate (even a failed one) shows the gate's verdict rather than judging again unconfirmed."""
    for job in load(path)["jobs"].values():
        runs = [step.get("run", "") for step in job["steps"]]
        gates = [i for i, run in enumerate(runs) if "loaderbench gate" in run]
        reports = [i for i, run in enumerate(runs) if "loaderbench report" in run]
        for i in gates:
            assert re.search(r"--confirm [1-9]", runs[i]), runs[i]
        for i in reports:
            assert "--verdict results/verdict.md" in runs[i] and "--baseline" not in runs[i]
            assert all(g < i for g in gates) and job["steps"][i].get("if") == "${{ !cancelled() }}"


def unpadded_benchmark_runs(workflow) -> list[str]:
    """Benchmark runs started without a random layout pad (loaderbench/measuring/layout.py): such a run can
    sit in another layout mode than the baseline's runs, systematically."""
    return [
        step["run"]
        for step in steps_of(workflow)
        if "pytest tests/benchmarks" in step.get("run", "")
        and 'LOADERBENCH_LAYOUT_PAD="$(.venv/bin/python -m loaderbench.measuring.layout)"'
        not in step["run"]
    ]


@pytest.mark.parametrize("path", [CI, GPU], ids=lambda p: p.name)
def test_every_benchmark_run_gets_a_random_layout(path):
    assert any("pytest tests/benchmarks" in s.get("run", "") for s in steps_of(load(path)))
    assert unpadded_benchmark_runs(load(path)) == []


# --- each rule catches what it exists for ----------------------------------------------------------


def broken(path, change):
    document = copy.deepcopy(load(path))
    change(document)
    return document


@pytest.mark.parametrize("trigger", sorted(PULL_REQUEST_TRIGGERS))
def test_a_pull_request_trigger_on_the_gpu_workflow_is_caught(trigger):
    gpu = broken(GPU, lambda w: w["on"].update({trigger: None}))
    assert pull_request_triggers(gpu) == [trigger]
    assert pull_request_triggers({"on": [trigger, "push"]}) == [trigger]
    assert pull_request_triggers({"on": trigger}) == [trigger]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda w: w.update(permissions="write-all"), "permissions 'write-all'"),
        (lambda w: w.pop("permissions"), "top-level permissions is None"),
        (lambda w: w["permissions"].update(contents="write"), "workflow: contents: write"),
        (
            lambda w: next(iter(w["jobs"].values())).update(permissions={"packages": "write"}),
            "packages: write",
        ),
    ],
)
def test_a_write_permission_is_caught(change, expected):
    problems = permission_problems(broken(GPU, change))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    "ref",
    [
        "actions/checkout@v6",
        "actions/checkout@8e8c483",
        "actions/checkout@main",
        "docker://python:3.12",
        "evil/action@8e8c483db84b4bee98b60c0593521ed34d9990e8x",
    ],
)
def test_an_unpinned_action_is_caught(ref):
    def unpin(workflow):
        next(iter(workflow["jobs"].values()))["steps"][0]["uses"] = ref

    assert unpinned_uses(broken(GPU, unpin)) == [ref]


def test_a_pin_without_its_tag_is_caught():
    text = GPU.read_text().replace(" # v6.0.1", "", 1)
    assert unlabelled_pins(text) == [
        "- uses: actions/checkout@8e8c483db84b4bee98b60c0593521ed34d9990e8"
    ]


def test_an_input_pasted_into_a_script_is_caught():
    def paste(workflow):
        step = next(s for s in steps_of(workflow) if "CANDIDATE_TORCH" in s.get("run", ""))
        step["run"] = 'loaderbench ab --b-spec "${{ inputs.candidate_torch }}"'

    assert len(interpolated_scripts(broken(GPU, paste))) == 1


def test_a_checkout_keeping_credentials_is_caught():
    def keep(workflow):
        next(iter(workflow["jobs"].values()))["steps"][0]["with"].pop("persist-credentials")

    assert len(credential_keeping_checkouts(broken(GPU, keep))) == 1


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda w: w["concurrency"].update(group="gpu-${{ github.ref }}"), "varies between runs"),
        (lambda w: w["concurrency"].update({"cancel-in-progress": True}), "cancel-in-progress"),
        (lambda w: w.pop("concurrency"), "expected a mapping"),
    ],
)
def test_a_gpu_run_that_could_share_the_gpu_is_caught(change, expected):
    problems = gpu_exclusivity_problems(broken(GPU, change))
    assert any(expected in problem for problem in problems), problems


@pytest.mark.processes
def test_the_external_tools_catch_a_broken_copy(tmp_path):
    """check-jsonschema rejects an invalid workflow; zizmor flags a tag pin and a pasted input."""
    github = tmp_path / ".github"
    shutil.copytree(GITHUB, github)
    gpu = github / "workflows" / "gpu.yml"
    text = gpu.read_text()
    gpu.write_text(
        text.replace(
            "actions/checkout@8e8c483db84b4bee98b60c0593521ed34d9990e8", "actions/checkout@v6", 1
        ).replace('"$CANDIDATE_TORCH"', '"${{ inputs.candidate_torch }}"', 1)
    )
    assert {f["ident"] for f in zizmor_findings(github)} >= {"unpinned-uses", "template-injection"}
    invalid = tmp_path / "invalid.yml"
    invalid.write_text(text.replace("runs-on: [self-hosted, linux, x64, gpu]", "runs-on: 7"))
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(invalid)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "runs-on" in done.stdout + done.stderr


def test_a_benchmark_run_without_a_layout_pad_is_caught():
    def unpad(workflow):
        step = next(s for s in steps_of(workflow) if "pytest tests/benchmarks" in s.get("run", ""))
        step["run"] = step["run"].replace("LOADERBENCH_LAYOUT_PAD=", "UNUSED=")

    assert len(unpadded_benchmark_runs(broken(GPU, unpad))) == 1
