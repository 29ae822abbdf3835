"""The fix `testfleet bisect` proposes for a polluter, each suggestion checked by a rerun.

After the bisection found a polluter, three steps: a cleaner among the suite's other tests
(`cleaner`); the state the polluter leaves, recorded inside one run of the failing order
(`state_hooks`); and a patch for each change (`fixes`), applied to a fresh copy of the
project and rerun in the failing order. Only the patches after which the victim passes,
and the polluters still do what they did, are shown.

Every run of this module is in a copy of the project, with a temp directory of its own:
a polluter's files then neither stay in the project nor reach the next run, and the temp
directory a snapshot lists is the run's own, not the machine's.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from testfleet.diagnose import cleaner, fixes
from testfleet.diagnose import probes as probes_mod
from testfleet.diagnose.minimize import Echo, Oracle
from testfleet.diagnose.probes import FAILING, NotCollected, ProbeError
from testfleet.diagnose.proposal import Proposal, Suggestion
from testfleet.diagnose.state import ROOT_ENV, SKIPPED_DIRS, Change


@dataclass(frozen=True)
class Settings:
    """What every run shares: the pytest options the probes keep, the seed, the limits."""

    options: Sequence[str]
    seed: int | None
    timeout: float | None
    jobs: int
    max_tests: int
    max_runs: int


@dataclass
class Run:
    """One run of the failing order in a copy: each test's outcome, and the state changes."""

    victim: str
    outcomes: dict[str, str]
    changes: list[Change]


class _Probe(probes_mod.SubprocessProbes):
    """A probe that also keeps the outcome of every test it ran (the polluters' too)."""

    outcomes: dict[str, str]

    def outcome(
        self, tests: Sequence[str], status: int, output: str, order: Path, report: Path
    ) -> str:
        victim = super().outcome(tests, status, output, order, report)
        data = json.loads(report.read_text(encoding="utf-8"))
        self.outcomes = {str(t["nodeid"]): str(t["outcome"]) for t in data["tests"]}
        return victim


class CopyRunner:
    """Runs tests in a fresh copy of the project, with patched files and a temp dir of its own."""

    def __init__(self, victim: str, root: Path, scratch: Path, settings: Settings) -> None:
        self.victim = victim
        self.root = root
        self.scratch = scratch
        self.settings = settings

    def run(
        self, tests: Sequence[str], files: Mapping[str, str] | None = None, state: bool = False
    ) -> Run:
        work = Path(tempfile.mkdtemp(prefix="run-", dir=self.scratch))
        project, tmp = work / "project", work / "tmp"
        copy_project(self.root, project)
        tmp.mkdir()
        for relative, text in (files or {}).items():
            (project / relative).write_text(text, encoding="utf-8")
        state_file = work / "state.json"
        options = [*self.settings.options]
        if state:
            options.append(f"--testfleet-state-file={state_file}")
        env = {**os.environ, "TMPDIR": str(tmp), "TMP": str(tmp), "TEMP": str(tmp)}
        # The project's package may be imported from the original (an editable install):
        # its modules are the project's own too.
        env[ROOT_ENV] = str(self.root)
        probe = _Probe(
            self.victim,
            options,
            work,
            seed=self.settings.seed,
            timeout=self.settings.timeout,
            cwd=project,
            env=env,
        )
        probe.outcomes = {}
        victim = probe(tuple(tests))
        changes: list[Change] = []
        if state and state_file.is_file():
            data = json.loads(state_file.read_text(encoding="utf-8"))
            changes = [Change(**change) for change in data["changes"]]
        shutil.rmtree(work, ignore_errors=True)
        return Run(victim, probe.outcomes, changes)


def copy_project(root: Path, project: Path) -> None:
    """A copy of ``root`` at ``project``, its links to its own files pointing into the copy.

    Links are copied as links; one with an absolute target inside ``root`` would
    otherwise lead from the copy back into the project, and a polluter writing through
    it would change the project itself.
    """
    shutil.copytree(root, project, symlinks=True, ignore=_ignored)
    resolved = root.resolve()
    for directory, dirs, names in os.walk(project):
        for name in [*dirs, *names]:
            link = Path(directory, name)
            target = link.readlink() if link.is_symlink() else None
            if target is not None and target.is_absolute():
                inside = _inside(target, root) or _inside(target, resolved)
                if inside is not None:
                    link.unlink()
                    link.symlink_to(project / inside, target_is_directory=(root / inside).is_dir())


def _inside(target: Path, root: Path) -> Path | None:
    return target.relative_to(root) if target.is_relative_to(root) else None


def _ignored(directory: str, names: list[str]) -> set[str]:
    # Tools' caches and environments: large, and no part of what the tests read.
    return {name for name in names if name in SKIPPED_DIRS}


def propose(
    order: Sequence[str],
    polluters: Sequence[str],
    victim: str,
    oracle: Oracle,
    settings: Settings,
    *,
    root: Path,
    echo: Echo,
) -> Proposal:
    """A cleaner, the polluters' changes, and the fixes a rerun confirmed."""
    found = cleaner.find_cleaner(
        order,
        polluters,
        victim,
        oracle,
        jobs=settings.jobs,
        max_tests=settings.max_tests,
        max_runs=settings.max_runs,
        echo=echo,
    )
    proposal = Proposal(cleaner=found.tests, runs=found.runs)
    if found.note:
        proposal.notes.append(found.note)
    elif found.tests is None and found.runs:
        proposal.notes.append("no cleaner: run between them, none of the other tests makes it pass")
    failing = [*polluters, victim]
    with tempfile.TemporaryDirectory(prefix="testfleet-fix-") as scratch:
        runner = CopyRunner(victim, root, Path(scratch), settings)
        echo(f"testfleet bisect: {victim}: recording the state {' and '.join(polluters)} leave")
        try:
            baseline = runner.run(failing, state=True)
        except (ProbeError, NotCollected, OSError) as exc:
            proposal.notes.append(
                f"no fix proposed: the failing order could not run in a copy: {exc}"
            )
            return proposal
        proposal.runs += 1
        if baseline.victim not in FAILING:
            proposal.notes.append(
                f"no fix proposed: in a copy of the project the failing order gave "
                f"{baseline.victim} (the failure needs the project's own directory)"
            )
            return proposal
        proposal.changes = baseline.changes
        if not proposal.changes:
            proposal.notes.append(
                "no fix proposed: no change of module attributes, environment variables, "
                "files, the current directory or shared fixture values was seen (the state "
                "may be in an object these do not reach, or outside the process)"
            )
        suggestions = fixes.suggest(root, polluters, baseline.changes)
        _verify(proposal, suggestions, runner, failing, baseline, echo)
        both = fixes.combined(root, polluters, baseline.changes)
        if not proposal.fixes and both is not None:
            _verify(proposal, [both], runner, failing, baseline, echo)
    return proposal


def _verify(
    proposal: Proposal,
    suggestions: list[Suggestion],
    runner: CopyRunner,
    failing: list[str],
    baseline: Run,
    echo: Echo,
) -> None:
    """Keep the suggestions after which the victim passes and the polluters do as before."""
    tried = suggestions[: fixes.MAX_SUGGESTIONS]
    if len(suggestions) > len(tried):
        proposal.notes.append(f"{len(suggestions) - len(tried)} more suggestions not tried")
    if not tried:
        return
    echo(
        f"testfleet bisect: {runner.victim}: rerunning the failing order with each of "
        f"{len(tried)} fixes"
    )

    def works(suggestion: Suggestion) -> bool:
        try:
            run = runner.run(failing, suggestion.files)
        except (ProbeError, NotCollected, OSError):
            return False
        polluters_same = all(
            run.outcomes.get(test) == outcome
            for test, outcome in baseline.outcomes.items()
            if test != runner.victim
        )
        return run.victim not in FAILING and polluters_same

    with concurrent.futures.ThreadPoolExecutor(max_workers=runner.settings.jobs) as pool:
        verdicts = list(pool.map(works, tried))
    kept = [s for s, ok in zip(tried, verdicts, strict=True) if ok]
    proposal.runs += len(tried)
    proposal.tried += len(tried)
    proposal.fixes += kept
    proposal.dropped += len(tried) - len(kept)
