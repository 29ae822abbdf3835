"""CODEOWNERS: one file, at the root of the repository, naming paths that exist."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_codeowners_is_at_the_root_and_nowhere_else_github_looks() -> None:
    assert ROOT.joinpath("CODEOWNERS").is_file()
    # GitHub reads the first of .github/, the root and docs/: a second copy would be ignored.
    assert not ROOT.joinpath(".github", "CODEOWNERS").exists()
    assert not ROOT.joinpath("docs", "CODEOWNERS").exists()


def test_every_path_in_codeowners_exists_and_has_an_owner() -> None:
    rules = [
        line.split()
        for line in ROOT.joinpath("CODEOWNERS").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules
    for pattern, *owners in rules:
        assert owners, pattern
        assert all(owner.startswith("@") for owner in owners), pattern
        if pattern != "*":
            assert ROOT.joinpath(pattern.lstrip("/")).exists(), pattern
