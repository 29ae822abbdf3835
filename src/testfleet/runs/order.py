"""The order of the nox test sessions: fixed by default, random on request (``random_order``).

By default ``tests`` and ``tests_parallel`` (and so ``invoke ci``) run the tests in their
collection order with pytest-randomly switched off, so that two runs of the same code do
the same thing; finding order dependence is the ``randomized`` session's job. A CI that runs
the suite once can have that one run in a random order instead: the order guard then costs
no second run. ``random_order = "fresh"`` (or ``TESTFLEET_RANDOM_ORDER=fresh``) draws a new
pytest-randomly seed for each run, a number repeats the order of that seed; the sessions
print the seed and, when the run fails, the command that repeats it.

Imports nothing heavy: nox's own environment reads it.
"""

from __future__ import annotations

import secrets

RANDOM_ORDER_ENV = "TESTFLEET_RANDOM_ORDER"
OFF = "off"
FRESH = "fresh"
#: The collection order: pytest-randomly, when installed, would shuffle it.
FIXED_ORDER = ("-p", "no:randomly")
#: pytest-randomly's seeds are 32-bit.
SEED_LIMIT = 2**32

RandomOrder = str | int


def parse_random_order(text: str) -> RandomOrder:
    """``off``, ``fresh`` or a seed, from a variable or ``[tool.testfleet]``."""
    value = str(text).strip().lower()
    if value in (OFF, FRESH):
        return value
    try:
        seed = int(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not off, fresh or a seed: use fresh for a new random order each run"
        ) from None
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{seed} is no pytest-randomly seed: use 0 to {SEED_LIMIT - 1}")
    return seed


def seed_of(random_order: RandomOrder) -> int | None:
    """The seed of this run: None for the fixed order, a new one for ``fresh``."""
    if random_order == OFF:
        return None
    if random_order == FRESH:
        return secrets.randbelow(SEED_LIMIT)
    return int(random_order)


def order_args(seed: int | None) -> tuple[str, ...]:
    """pytest's arguments for the fixed order (no seed) or the random order of ``seed``."""
    if seed is None:
        return FIXED_ORDER
    return ("-p", "randomly", f"--randomly-seed={seed}")


def repeat_command(seed: int, session: str) -> str:
    """The command that runs the session again in the order of ``seed``."""
    return f"{RANDOM_ORDER_ENV}={seed} nox -s {session}"
