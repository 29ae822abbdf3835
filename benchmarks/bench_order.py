"""How many planted order dependences random seeds find, alone and after a reversed run.

The planted suite is tests/material/order/planted: five tests that pass in collection
order and fail in some other (four broken by one later test, one needing both of two
later tests), and fillers. Each trial draws ``--seeds`` fresh seeds and counts the
planted tests that failed under at least one of them; the reversed run is the same in
every trial. A defect counts as found when its test failed in a run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchenv import clean_env

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "tests" / "material" / "order" / "planted"
DEFECTS = (
    "test_a_flags.py::test_flags_start_clear",
    "test_a_flags.py::test_counter_starts_at_zero",
    "test_a_price.py::test_price_is_plain",
    "test_b_config.py::test_default_is_quiet",
    "test_d_login.py::test_alice_logs_in",
)


def copy_planted(target: Path) -> None:
    (target / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for source in sorted(PLANTED.glob("*.py.txt")):
        stem = source.name.removesuffix(".py.txt")
        keep = stem.startswith("support_") or stem == "conftest"
        name = f"{stem}.py" if keep else f"test_{stem}.py"
        (target / name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")


def failed(root: Path, order: Sequence[str]) -> set[str]:
    """The planted tests that failed in one run with the ``order`` arguments."""
    report = root / "run.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *order]
    command += ["-n", "0", f"--testfleet-report={report}"]
    subprocess.run(command, cwd=root, env=clean_env(), capture_output=True, check=False)
    data = json.loads(report.read_text(encoding="utf-8"))
    return {t["nodeid"] for t in data["tests"] if t["outcome"] == "failed"} & set(DEFECTS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_order.py", description=__doc__)
    parser.add_argument("--trials", type=int, default=10, help="draws of seeds (default 10)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds a trial (default 3)")
    args = parser.parse_args(argv)
    rng = random.Random()
    with tempfile.TemporaryDirectory(prefix="testfleet-bench-order-") as tmp:
        root = Path(tmp)
        copy_planted(root)
        in_order = failed(root, ["-p", "no:randomly"])
        reversed_found = failed(root, ["-p", "no:randomly", "--testfleet-reverse"])
        seeds_only: list[int] = []
        with_reverse: list[int] = []
        for _ in range(args.trials):
            found: set[str] = set()
            for _ in range(args.seeds):
                seed = rng.randrange(1, 2**31)
                found |= failed(root, ["-p", "randomly", f"--randomly-seed={seed}"])
            seeds_only.append(len(found))
            with_reverse.append(len(found | reversed_found))
    total = len(DEFECTS)
    print(f"planted order dependences: {total}; found in collection order: {len(in_order)}")
    print(f"reversed run alone: {len(reversed_found)}/{total}")
    print(
        f"{args.seeds} seeds alone: mean {statistics.mean(seeds_only):.2f}/{total}, "
        f"all found in {sum(n == total for n in seeds_only)}/{args.trials} trials"
    )
    print(
        f"reversed + {args.seeds} seeds: mean {statistics.mean(with_reverse):.2f}/{total}, "
        f"all found in {sum(n == total for n in with_reverse)}/{args.trials} trials"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
