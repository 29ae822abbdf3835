"""How often `testfleet classify` names a planted collision: parallel-only, right partner.

Each trial writes a fresh suite of tests/planted_collisions.py (two writers that take a
shared resource at the same moment on two workers, among quick tests that share nothing),
runs it under ``-n 2``, classifies its failures and replays each reproduce command. A
trial is right when every failure is parallel-only with the other writer and its
reproduce command shows the failure again. The issue asks for at least 9 right in 10.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The generator lives with the tests, which run one trial per kind.
sys.path.insert(0, str(ROOT / "tests"))

from planted_collisions import KINDS, reproduces, run_trial  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_collide.py", description=__doc__)
    parser.add_argument("--trials", type=int, default=10, help="trials per kind (default 10)")
    parser.add_argument("--kind", action="append", choices=KINDS, help="default: all kinds")
    parser.add_argument("--runs", type=int, default=1, help="classify --runs (default 1)")
    args = parser.parse_args(argv)
    worst = 1.0
    for kind in args.kind or KINDS:
        right = 0
        started = time.perf_counter()
        for trial in range(args.trials):
            with tempfile.TemporaryDirectory(prefix=f"testfleet-bench-collide-{kind}-") as tmp:
                got = run_trial(Path(tmp), kind, args.runs)
                works = all(reproduces(Path(tmp), c) for _, _, c in got.said.values())
                ok = got.right and works
                right += ok
                print(
                    f"{kind} trial {trial + 1}: {'right' if ok else 'WRONG'} "
                    f"failed={got.failed} said={ {k: v[:2] for k, v in got.said.items()} } "
                    f"reproduces={works}",
                    flush=True,
                )
        seconds = (time.perf_counter() - started) / args.trials
        print(f"{kind}: {right}/{args.trials} right, {seconds:.1f} s a trial", flush=True)
        worst = min(worst, right / args.trials)
    return 0 if worst >= 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
