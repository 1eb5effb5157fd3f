"""What `tune` answers: the recommended DataLoader call with a reason per setting, the diagnoses,
and the evidence (every contest), as data; ``as_dict`` is tune.json. presenting/tune.py shows it
(the terminal text, report.md, tune.png) and writes the three files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loaderbench.tuning.contest import Candidate, Contest
from loaderbench.tuning.search import Decision, answered, preferred


@dataclass
class TuneResult:
    """The answer for one dataset on this machine. ``pick`` with ``persistent_workers`` is the
    recommendation; ``decisions`` say why, ``contests`` show the measurements behind them."""

    dataset: str
    batch_size: int
    device: str
    pick: Candidate
    persistent_workers: bool
    decisions: list[Decision]
    diagnoses: list = field(default_factory=list)  # diagnose.Diagnosis
    contests: list[Contest] = field(default_factory=list)
    bottleneck: str | None = None
    load_ms_per_batch: float | None = None
    step_ms_per_batch: float | None = None
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    alpha: float = 0.05
    machine: dict = field(default_factory=dict)
    #: With --sweep: how the search compares with measuring every worker count 0-4.
    sweep: dict | None = None
    #: The search's minimum effect: the margin by which more workers must be shown faster.
    min_effect: float = 0.05
    #: A default (non-persistent) loader's epoch at the pick: start_s, steady_s, shutdown_s
    #: (medians), the samples timed and the dataset's, and the epoch scaled to the dataset.
    default_epoch: dict | None = None
    #: The user's worker_init_fn (MOD:CALLABLE), given to every loader measured.
    worker_init_fn: str | None = None
    #: The loader class tuned (measuring.loaders.LoaderClass); None: the class in use.
    loader: Any = None

    def compare_with_sweep(self, contest: Contest) -> None:
        """The pick's throughput against the best of an exhaustive sweep measured side by side,
        and the search's seconds (its contests) against the sweep's."""
        ratios: dict[int, float] = {}
        for i, entry in enumerate(contest.entries):
            if i == 0:
                ratios[entry.contestant.num_workers] = 1.0
                continue
            estimate = entry.estimate(self.alpha)
            assert estimate is not None  # a sweep that ran to the end measured every count
            ratios[entry.contestant.num_workers] = estimate.ratio
        choice = preferred(contest, self.min_effect, self.alpha)
        best = choice.num_workers
        # Larger counts the sweep could not tell from its best: their ratio's interval still
        # straddles the line when its blocks ran out (noise), so "best" is the rule's default.
        open_against = [
            e.contestant.num_workers
            for e in contest.entries
            if e.contestant.num_workers > best
            and not answered(
                contest.ratio_between(choice, e.contestant, self.alpha), self.min_effect
            )
        ]
        fastest = min(ratios, key=ratios.__getitem__)
        searched_s = sum(c.seconds for c in self.contests)
        picked = ratios.get(self.pick.num_workers)
        self.sweep = {
            "counts": sorted(ratios),
            "best_workers": best,
            "fastest_workers": fastest,
            "rule": (
                f"the fewest workers that no larger count is shown faster than by more than "
                f"{self.min_effect:.0%} (the whole paired 95% interval)"
            ),
            "open_against": open_against,
            "blocks": contest.blocks,
            "picked_workers": self.pick.num_workers,
            "picked_throughput_vs_best": None if picked is None else ratios[best] / picked,
            "search_s": round(searched_s, 1),
            "sweep_s": round(contest.seconds, 1),
            "time_ratios_vs_w0": {str(n): r for n, r in ratios.items()},
        }
        self.contests.append(contest)
        share = "not in the sweep" if picked is None else f"{ratios[best] / picked:.1%}"
        unsettled = (
            f" (open: in {contest.blocks} blocks it could not tell {best} from "
            f"{', '.join(map(str, open_against))} workers either way, so {best} is the rule's "
            f"default, not a finding)"
            if open_against
            else ""
        )
        self.notes.append(
            f"sweep of {', '.join(map(str, sorted(ratios)))} workers side by side: best "
            f"{best} workers by the search's rule (fewest workers unless more are shown faster "
            f"by more than {self.min_effect:.0%}; fastest estimate {fastest}){unsettled}; the pick ({self.pick.num_workers}) reaches {share} of its "
            f"throughput; the search's contests took {searched_s:.0f} s, the sweep "
            f"{contest.seconds:.0f} s"
        )

    def defects(self) -> list:
        """The diagnoses that ask for a fix."""
        return [d for d in self.diagnoses if not d.is_note]

    def diagnosis_notes(self) -> list[str]:
        """The diagnoses that are notes (no defect), as note lines."""
        return [f"{d.code}: {d.message()}" for d in self.diagnoses if d.is_note]

    # -- the answer ---------------------------------------------------------------------------
    def headline(self) -> str:
        if self.bottleneck == "step":
            return (
                f"Loading is not the bottleneck: one batch loads in "
                f"{self.load_ms_per_batch:.1f} ms, the step takes {self.step_ms_per_batch:.1f} "
                f"ms; recommended: {workers_text(self.pick.num_workers)}, the cheapest setting "
                f"within the minimum effect of the fastest."
            )
        if self.bottleneck == "loading":
            return (
                f"Loading is the bottleneck: one batch loads in {self.load_ms_per_batch:.1f} ms, "
                f"the step takes {self.step_ms_per_batch:.1f} ms."
            )
        return f"Recommended for {self.dataset} on this machine: {workers_text(self.pick.num_workers)}."

    def loader_kwargs(self) -> dict:
        """The recommended keyword arguments of DataLoader (besides the dataset)."""
        kwargs: dict = {"batch_size": self.batch_size, "num_workers": self.pick.num_workers}
        if self.pick.num_workers:
            kwargs["multiprocessing_context"] = self.pick.start_method
            kwargs["persistent_workers"] = self.persistent_workers
            kwargs["prefetch_factor"] = self.pick.prefetch_factor or 2
        if self.pick.pin_memory:
            kwargs["pin_memory"] = True
        return kwargs

    def snippet(self) -> str:
        """A ready-to-paste ``DataLoader(...)`` call (of the class tuned, ``--loader``), one
        setting per line with its reason."""
        reasons = {d.setting: d.reason for d in self.decisions}
        reasons.setdefault("batch_size", "as given")
        lines = [f"{self.loader_class().name}("]
        lines.append("    dataset,")
        for key, value in self.loader_kwargs().items():
            reason = reasons.get(key, "")
            lines.append(f"    {key}={value!r},{'  # ' + reason if reason else ''}")
        if self.worker_init_fn and self.pick.num_workers:
            name = self.worker_init_fn.replace(":", ".")
            lines.append(f"    worker_init_fn={name},  # as given")
        lines.append(")")
        return "\n".join(lines)

    def loader_class(self):
        """The LoaderClass tuned."""
        from loaderbench.measuring.loaders import current_loader

        return self.loader or current_loader()

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "loader": self.loader_class().record(),
            "batch_size": self.batch_size,
            "device": self.device,
            "recommendation": self.loader_kwargs(),
            "headline": self.headline(),
            "decisions": [vars(d) for d in self.decisions],
            "diagnoses": [
                {"code": d.code, "note": d.is_note, "cause": d.cause, "fix": d.fix}
                for d in self.diagnoses
            ],
            "bottleneck": self.bottleneck,
            "load_ms_per_batch": self.load_ms_per_batch,
            "step_ms_per_batch": self.step_ms_per_batch,
            "notes": self.notes,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 1),
            "confidence": 1 - self.alpha,
            "machine": self.machine,
            "sweep": self.sweep,
            "min_effect": self.min_effect,
            "default_epoch": self.default_epoch,
            "worker_init_fn": self.worker_init_fn,
            "contests": [c.as_dict(self.alpha) for c in self.contests],
        }


def workers_text(n: int) -> str:
    return f"{n} worker" if n == 1 else f"{n} workers"
