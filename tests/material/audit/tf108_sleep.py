# ruff: noqa
"""TF108: fixed sleeps used to wait, and look-alikes that are fine."""

import asyncio
import time
from time import sleep


def test_waits_for_the_writer():
    time.sleep(2)  # TF108


def test_sleeps_through_an_import():
    sleep(0.5)  # TF108


async def test_sleeps_asynchronously():
    await asyncio.sleep(1)  # TF108


def test_polls_with_a_deadline(tmp_path):
    deadline = time.monotonic() + 5
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_sleeps_in_a_worker_thread():
    def work():
        time.sleep(0.1)

    work()


def helper_that_is_no_test():
    time.sleep(1)


def test_works_while_holding_a_lock(tmp_path):
    lock = FileLock(tmp_path / "l")
    with lock:
        time.sleep(0.2)


async def test_lets_the_other_tasks_run():
    await asyncio.sleep(0)
    time.sleep(0)
