"""Static isolation audit: find what makes test code unsafe in parallel, without running it.

The rules are in :mod:`testfleet.diagnose.audit.rules`; this module finds the files,
parses them, applies the ``# testfleet: ignore[...]`` comments and renders the result.
"""

from __future__ import annotations

import ast
import fnmatch
import io
import json
import re
import shlex
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testfleet.diagnose.audit.rules import RULES, SEVERITIES, audit_module

SCHEMA = "testfleet.audit/1"
FORMATS = ("text", "markdown", "json")
# Directories that hold no test code of the project's own.
SKIPPED_DIRS = {"__pycache__", "node_modules", "venv", "build", "dist", "site-packages"}
IGNORE_COMMENT = re.compile(r"#\s*testfleet:\s*ignore\b(?:\[([^\]]*)\])?")


class AuditError(ValueError):
    """A path to audit that does not exist."""


@dataclass(frozen=True)
class Finding:
    """One hazard at one line, with its rule's explanation."""

    path: str
    line: int
    rule: str
    severity: str
    title: str
    detail: str
    why: str
    fix: str
    effort: str


@dataclass
class AuditResult:
    """Findings, unparsable files and comment problems of one audit, sorted."""

    paths: list[str]
    excludes: list[str]
    files: int = 0
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def at_or_above(self, severity: str) -> list[Finding]:
        """The findings whose severity is ``severity`` or higher."""
        floor = SEVERITIES.index(severity)
        return [item for item in self.findings if SEVERITIES.index(item.severity) >= floor]

    def counts(self) -> dict[str, int]:
        """Findings per severity, highest first."""
        return {
            severity: sum(item.severity == severity for item in self.findings)
            for severity in reversed(SEVERITIES)
        }


def display(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is inside it, in POSIX form."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return resolved.as_posix()


def _excluded(shown: str, excludes: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatch(shown, pattern) or fnmatch.fnmatch(shown, pattern.rstrip("/") + "/*")
        for pattern in excludes
    )


def find_files(paths: Sequence[Path], root: Path, excludes: Sequence[str]) -> list[Path]:
    """Every ``.py`` file under ``paths`` (a file given by name is taken as it is)."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise AuditError(f"no such file or directory: {', '.join(missing)}")
    found: dict[str, Path] = {}
    for path in paths:
        if path.is_file():
            candidates: Iterable[Path] = [path]
        else:
            candidates = (
                item
                for item in path.rglob("*.py")
                if not any(
                    part.startswith(".") or part in SKIPPED_DIRS or part.endswith(".egg-info")
                    for part in item.relative_to(path).parts[:-1]
                )
            )
        for item in candidates:
            shown = display(item, root)
            if not _excluded(shown, excludes):
                found[shown] = item
    return [found[key] for key in sorted(found)]


def ignore_comments(source: str) -> dict[int, set[str] | None]:
    """Per line, the rule ids its ``# testfleet: ignore[...]`` silences (None: all of them)."""
    silenced: dict[int, set[str] | None] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = IGNORE_COMMENT.search(token.string)
        if match is None:
            continue
        line = token.start[0]
        if match.group(1) is None:
            silenced[line] = None
        else:
            ids = {item.strip().upper() for item in match.group(1).split(",") if item.strip()}
            silenced[line] = ids
    return silenced


def audit_source(source: str, shown: str) -> tuple[list[Finding], list[str]]:
    """Findings and warnings of one file's text; raises SyntaxError when it does not parse."""
    tree = ast.parse(source, filename=shown)
    silenced = ignore_comments(source)
    warnings = [
        f"{shown}:{line}: unknown rule {rule} in a testfleet: ignore comment"
        for line, ids in sorted(silenced.items())
        for rule in sorted(ids or ())
        if rule not in RULES
    ]
    findings = []
    for hit in audit_module(tree):
        ids = silenced.get(hit.line, set())
        if ids is None or hit.rule in ids:
            continue
        rule = RULES[hit.rule]
        findings.append(
            Finding(
                shown,
                hit.line,
                rule.id,
                rule.severity,
                rule.title,
                hit.detail,
                rule.why,
                rule.fix,
                rule.effort,
            )
        )
    return findings, warnings


def audit_paths(
    paths: Sequence[Path], root: Path | None = None, excludes: Sequence[str] = ()
) -> AuditResult:
    """Audit every Python file under ``paths``; a file that does not parse is noted, not fatal."""
    base = root if root is not None else Path.cwd()
    result = AuditResult([display(path, base) for path in paths], list(excludes))
    for path in find_files(paths, base, excludes):
        shown = display(path, base)
        result.files += 1
        try:
            source = path.read_text(encoding="utf-8")
            findings, warnings = audit_source(source, shown)
        except SyntaxError as exc:
            result.errors.append(f"{shown}:{exc.lineno or 0}: does not parse: {exc.msg}")
            continue
        except (UnicodeDecodeError, OSError) as exc:
            result.errors.append(f"{shown}: cannot be read: {exc}")
            continue
        result.findings.extend(findings)
        result.warnings.extend(warnings)
    result.findings.sort(key=lambda item: (item.path, item.line, item.rule, item.detail))
    return result


def command_line(result: AuditResult, output_format: str) -> str:
    """The ``testfleet audit`` command that gives this result (paths as shown)."""
    words = ["testfleet", "audit", *result.paths]
    for pattern in result.excludes:
        words += ["--exclude", pattern]
    words += ["--format", output_format]
    return shlex.join(words)


def summary(result: AuditResult) -> str:
    """``3 findings (high 1, medium 2, low 0) in 12 files``."""
    counts = ", ".join(f"{severity} {count}" for severity, count in result.counts().items())
    return f"{len(result.findings)} findings ({counts}) in {result.files} files"


def render_text(result: AuditResult) -> str:
    """One block per finding: where, what, and the fix."""
    lines: list[str] = []
    for item in result.findings:
        lines.append(
            f"{item.path}:{item.line}: {item.rule} [{item.severity}] {item.title}: {item.detail}"
        )
        lines.append(f"    why: {item.why}")
        lines.append(f"    fix ({item.effort}): {item.fix}")
    lines += [f"error: {error}" for error in result.errors]
    lines += [f"warning: {warning}" for warning in result.warnings]
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: AuditResult) -> str:
    """A page: summary, findings table, the rules that were hit with why and fix."""
    lines = [
        "# Test isolation audit",
        "",
        f"Generated by `{command_line(result, 'markdown')}`; add "
        "`--output FILE` to write it to a file. Do not edit it by hand: silence a false "
        "positive with `# testfleet: ignore[RULE]` on its line (see "
        "[diagnose.md](diagnose.md#static-audit)).",
        "",
        # No file count here: adding a clean test file must not make the page stale.
        f"{len(result.findings)} findings "
        f"({', '.join(f'{key} {value}' for key, value in result.counts().items())}).",
        "",
        f"Rules checked: {', '.join(RULES)}.",
        "",
    ]
    if result.findings:
        lines += [
            "| where | rule | severity | finding | fix | effort |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{item.path}:{item.line}` | {item.rule} | {item.severity} | "
            f"{_cell(item.title)}: {_cell(item.detail)} | {_cell(item.fix)} | {item.effort} |"
            for item in result.findings
        ]
        lines.append("")
        lines += ["## Why these break parallel runs", ""]
        for rule_id in sorted({item.rule for item in result.findings}):
            rule = RULES[rule_id]
            lines.append(f"- **{rule.id}** ({rule.title}): {rule.why}.")
        lines.append("")
    if result.errors:
        lines += ["## Files that could not be audited", ""]
        lines += [f"- `{error}`" for error in result.errors]
        lines.append("")
    if result.warnings:
        lines += ["## Warnings", ""]
        lines += [f"- {warning}" for warning in result.warnings]
        lines.append("")
    return "\n".join(lines)


def to_json(result: AuditResult) -> dict[str, Any]:
    """The result as a JSON-ready dict (schema ``testfleet.audit/1``)."""
    return {
        "schema": SCHEMA,
        "paths": result.paths,
        "excludes": result.excludes,
        "files": result.files,
        "summary": {"findings": len(result.findings), "severities": result.counts()},
        "findings": [asdict(item) for item in result.findings],
        "errors": result.errors,
        "warnings": result.warnings,
    }


def render(result: AuditResult, output_format: str) -> str:
    """The result in one of :data:`FORMATS`."""
    if output_format == "markdown":
        return render_markdown(result)
    if output_format == "json":
        return json.dumps(to_json(result), indent=2, ensure_ascii=False) + "\n"
    return render_text(result)
