"""What a bisection found about one test, and how it is shown: terminal, JSON, markdown."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testfleet.diagnose.proposal import Proposal

SCHEMA_NAME = "testfleet.order"
SCHEMA_VERSION = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_VERSION}"

POLLUTED = "polluted-by"
DEPENDS = "depends-on"
FAILS_ALONE = "fails-alone"
NOT_REPRODUCED = "not-reproduced"
AMBIGUOUS = "ambiguous"
FLAKY = "flaky"
MISSING = "missing"
ERROR = "error"
#: Every verdict, in the order reports list them.
VERDICTS = (POLLUTED, DEPENDS, FAILS_ALONE, AMBIGUOUS, FLAKY, NOT_REPRODUCED, MISSING, ERROR)
#: Verdicts that say something is wrong with the suite (exit status 1 of `testfleet bisect`).
FINDINGS = frozenset({POLLUTED, DEPENDS, FAILS_ALONE, AMBIGUOUS, FLAKY})


def exit_status(results: Iterable[Diagnosis]) -> int:
    """2 when a test could not be diagnosed, else 1 on any finding, else 0."""
    verdicts = {result.verdict for result in results}
    if verdicts & {MISSING, ERROR}:
        return 2
    return 1 if verdicts & FINDINGS else 0


@dataclass
class Diagnosis:
    """What was found about one test, and the commands that show it."""

    victim: str
    verdict: str
    message: str
    #: The polluters (``polluted-by``) or the tests it needs (``depends-on``), in run order.
    tests: list[str] = field(default_factory=list)
    #: Fails: the victim with just ``tests`` (after them, or before them for ``depends-on``).
    command: list[str] | None = None
    #: Passes: the same without the cause (``polluted-by``) or with it first (``depends-on``).
    control: list[str] | None = None
    verified: bool = False
    #: Removing any one of ``tests`` made the failure go away (only checked for 2 or more).
    minimal: bool | None = None
    tried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Node ids of the order that pytest no longer collects.
    missing: list[str] = field(default_factory=list)
    dropped_args: list[str] = field(default_factory=list)
    candidates: int = 0
    rounds: int = 0
    runs: int = 0
    seconds: float = 0.0
    seed: int | None = None
    report: str | None = None
    #: Whose order was bisected: "the report's worker gw1 (184 of 230 tests)", or None.
    order_source: str | None = None
    #: For a polluter: a cleaner, the state it leaves and the verified fixes (bisect).
    proposal: Proposal | None = None

    @property
    def found(self) -> bool:
        return self.verdict in (POLLUTED, DEPENDS)

    def to_json(self) -> dict[str, Any]:
        return {
            "victim": self.victim,
            "verdict": self.verdict,
            "tests": self.tests,
            "command": shlex.join(self.command) if self.command else None,
            "argv": self.command,
            "control": shlex.join(self.control) if self.control else None,
            "control_argv": self.control,
            "verified": self.verified,
            "minimal": self.minimal,
            "message": self.message,
            "tried": self.tried,
            "notes": self.notes,
            "missing": self.missing,
            "dropped_args": self.dropped_args,
            "candidates": self.candidates,
            "rounds": self.rounds,
            "runs": self.runs,
            "seconds": round(self.seconds, 3),
            "seed": self.seed,
            "report": self.report,
            "order_source": self.order_source,
            "cleaner": self.proposal.cleaner if self.proposal else None,
            "fix": self.proposal.to_json() if self.proposal else None,
        }

    def render(self) -> str:
        """A few lines for the terminal: the verdict and the command that shows it."""
        lines = [f"testfleet bisect: {self.verdict}: {self.message}"]
        if self.command is not None:
            lines.append(f"  reproduce with: {shlex.join(self.command)}")
        if self.control is not None:
            lines.append(f"  passes with:    {shlex.join(self.control)}")
        if self.proposal is not None:
            lines += self.proposal.render()
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(
            f"  ({self.candidates} candidates, {self.rounds} rounds, {self.runs} pytest runs, "
            f"{self.seconds:.1f}s)"
        )
        return "\n".join(lines) + "\n"


def document(results: Sequence[Diagnosis], **extra: Any) -> dict[str, Any]:
    """The ``testfleet.order/1`` JSON document of some diagnoses."""
    counts = dict.fromkeys(VERDICTS, 0)
    for result in results:
        counts[result.verdict] += 1
    return {
        "schema": SCHEMA,
        **extra,
        "results": [result.to_json() for result in results],
        "summary": {"diagnosed": len(results), "verdicts": counts},
    }


def render_markdown(data: Mapping[str, Any]) -> str:
    """The "Order dependence" section of a summary, from a ``testfleet.order/1`` document."""
    out = ["## Order dependence", ""]
    runs = data.get("seeds")
    if runs is not None:
        failed = [r for r in runs if r["exit_status"] not in (0, 5)]
        listed = ", ".join(f"{_run_label(r)} (exit {r['exit_status']})" for r in runs)
        out.append(f"Runs: {listed}; {len(failed)} failed.")
        out.append("")
    results = data["results"]
    if not results:
        out.append("No failing test to diagnose.")
        return "\n".join(out) + "\n"
    out += ["| test | verdict | cause | run |", "|---|---|---|---|"]
    for result in results:
        cause = "<br>".join(f"`{_md(t)}`" for t in result["tests"]) or "-"
        run = result.get("order_source") or (
            f"seed {result['seed']}" if result["seed"] is not None else "-"
        )
        out.append(f"| `{_md(result['victim'])}` | {result['verdict']} | {cause} | {run} |")
    for result in results:
        out += ["", f"**`{_md(result['victim'])}`**: {result['message']}"]
        if result["command"]:
            out += ["", "```sh", result["command"], "```"]
        out += [f"- {note}" for note in result["notes"]]
    skipped = data.get("not_diagnosed") or []
    if skipped:
        out += ["", f"Not diagnosed (limit reached): {len(skipped)} failing tests."]
    return "\n".join(out) + "\n"


def _run_label(run: Mapping[str, Any]) -> str:
    return str(run.get("order") or f"seed {run['seed']}")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")
