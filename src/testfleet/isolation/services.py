"""Services started once per run, before the workers, and stopped after the last one ended.

A service is any object with a ``name``, a ``start()`` that returns its connection
info (a dict of strings: an address, a password...) and a ``stop()``. Users declare
them with the ``pytest_testfleet_services`` hook (see :mod:`testfleet.hookspecs`).

The controller of an xdist run, or the single process of a serial run, starts them
in ``pytest_sessionstart`` before xdist spawns the workers, hands the info to every
worker in ``workerinput``, and stops them, last started first, after the workers
have ended: after a normal run, a failing one, a crashed worker, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest

from testfleet.core import workers

#: Key of the services' info in ``node.workerinput``.
WORKERINPUT_KEY = "testfleet_services"
DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0
HOOK_NAME = "pytest_testfleet_services"


@runtime_checkable
class Service(Protocol):
    """A run-once service: started before any test, stopped after the last one.

    ``stop()`` is also called when ``start()`` raised or was interrupted, so that a
    half-started service is cleaned up: it must cope with that.
    """

    name: str

    def start(self) -> dict[str, str]: ...

    def stop(self) -> None: ...


class ServiceError(Exception):
    """A service that is declared wrongly, or that did not start or stop."""


class UnknownServiceError(LookupError):
    """A test asked for a service that this run did not start."""

    def __str__(self) -> str:
        # LookupError would print the message in quotes, as KeyError does.
        return str(self.args[0]) if self.args else ""


class ServiceManager:
    """Starts the declared services once, keeps their info, and stops them exactly once."""

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self.info: dict[str, dict[str, str]] = {}
        #: How long each service took to start.
        self.seconds: dict[str, float] = {}
        # Every service whose start() was called, in order, even if it raised: all of
        # them get a stop().
        self._begun: list[Service] = []
        #: SIGTERM handling while the services run (see TerminateAsInterrupt).
        self.terminate_guard: TerminateAsInterrupt | None = None

    def start_all(self) -> None:
        """Start every service in order; on a failure stop those begun and raise ServiceError."""
        for service in self.services:
            self._begun.append(service)
            began = time.monotonic()
            try:
                self.info[service.name] = check_info(service.name, service.start())
            except Exception as exc:
                errors = self.stop_all()
                detail = "".join(f"\n  also: {error}" for error in errors)
                reason = (
                    str(exc) if isinstance(exc, ServiceError) else f"{type(exc).__name__}: {exc}"
                )
                raise ServiceError(
                    f"service {service.name!r} did not start: {reason}{detail}"
                ) from exc
            self.seconds[service.name] = time.monotonic() - began

    def stop_all(self) -> list[str]:
        """Stop what was begun, last first, each exactly once; return the errors, in words."""
        errors: list[str] = []
        while self._begun:
            service = self._begun.pop()
            try:
                service.stop()
            except Exception as exc:
                errors.append(f"service {service.name!r} did not stop: {type(exc).__name__}: {exc}")
            except BaseException:
                # A second Ctrl-C while stopping: keep it for pytest_unconfigure's retry.
                self._begun.append(service)
                raise
        self.info.clear()
        return errors


class TerminateAsInterrupt:
    """SIGTERM raises KeyboardInterrupt while run-once services are up, then is put back.

    Python's default for SIGTERM ends the process at once: no ``finally``, no
    ``pytest_sessionfinish``, so the services would outlive the run. A run started in
    the background (``cmd &``, ``nohup``, some CI runners) has SIGINT ignored and cannot
    be stopped with Ctrl-C; SIGTERM is how it is stopped, and then it must still clean
    up. A handler the program set itself is left alone.
    """

    def __init__(self, previous: signal.Handlers) -> None:
        self._previous = previous

    @classmethod
    def install(cls) -> TerminateAsInterrupt | None:
        """Take SIGTERM over when it has its default action and this is the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return None
        signal.signal(signal.SIGTERM, _raise_interrupt)
        return cls(signal.SIG_DFL)

    def restore(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def check_info(name: str, info: object) -> dict[str, str]:
    """``info`` when it is a dict of str to str (it travels to the workers as JSON)."""
    if not isinstance(info, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in info.items()
    ):
        raise ServiceError(
            f"start() returned {info!r}; it must return a dict of str to "
            "str, such as {'url': 'http://127.0.0.1:8000'} (convert numbers with str())"
        )
    return dict(info)


def declared_services(config: pytest.Config) -> list[Service]:
    """Every service that the ``pytest_testfleet_services`` implementations return, checked."""
    results: list[list[Service] | None] = getattr(config.hook, HOOK_NAME)(config=config)
    services: list[Service] = []
    for result in results:
        if result is None:
            continue
        if not isinstance(result, list | tuple):
            raise ServiceError(
                f"{HOOK_NAME} returned {result!r}: return a list of services, or None"
            )
        services.extend(result)
    seen: set[str] = set()
    for service in services:
        name = getattr(service, "name", None)
        if not isinstance(name, str) or not name.strip():
            raise ServiceError(
                f"{HOOK_NAME} returned {service!r} without a name: give it a non-empty "
                "str attribute `name`"
            )
        if not isinstance(service, Service):
            raise ServiceError(
                f"service {name!r} ({type(service).__name__}) needs start() and stop() methods"
            )
        if name in seen:
            raise ServiceError(
                f"two services are named {name!r}: give each service of a run its own name"
            )
        seen.add(name)
    return services


MANAGER_KEY = pytest.StashKey[ServiceManager]()


def start_services(config: pytest.Config) -> ServiceManager | None:
    """Start the declared services of this run (controller or serial process only)."""
    if workers.is_worker(config):
        return None
    services = declared_services(config)
    if not services:
        return None
    manager = ServiceManager(services)
    # Stashed before starting, so that an interrupted start is still stopped.
    config.stash[MANAGER_KEY] = manager
    manager.terminate_guard = TerminateAsInterrupt.install()
    manager.start_all()
    return manager


def stop_services(config: pytest.Config) -> list[str]:
    """Stop this run's services if any are running; the errors, in words. Safe to repeat."""
    manager = config.stash.get(MANAGER_KEY, None)
    if manager is None:
        return []
    errors = manager.stop_all()
    if manager.terminate_guard is not None:
        manager.terminate_guard.restore()
        manager.terminate_guard = None
    return errors


def services_info(config: pytest.Config) -> dict[str, dict[str, str]]:
    """The info of every service of this run, by name, in any process of the run."""
    if workers.is_worker(config):
        received = config.workerinput.get(WORKERINPUT_KEY) or {}  # type: ignore[attr-defined]
        return {str(name): dict(info) for name, info in received.items()}
    manager = config.stash.get(MANAGER_KEY, None)
    return {} if manager is None else {name: dict(info) for name, info in manager.info.items()}


def service_info(config: pytest.Config, name: str) -> dict[str, str]:
    """The info that service ``name`` returned from ``start()``, in any process of the run."""
    known = services_info(config)
    if name in known:
        return known[name]
    if known:
        have = "the services of this run are " + ", ".join(repr(n) for n in sorted(known))
    elif config.option.collectonly:
        have = "services are not started for --collect-only"
    else:
        have = "this run has no services"
    raise UnknownServiceError(
        f"no service named {name!r}: {have}. Declare services by implementing "
        f"{HOOK_NAME}(config) in a conftest.py that pytest loads at startup (the rootdir's "
        "or the test directory's) or in a plugin; they start in pytest_sessionstart."
    )


# -- helpers for services that are subprocesses ---------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now (the OS picks it; bind it soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _leads_own_group(process: subprocess.Popen[Any]) -> bool:
    try:
        return process.poll() is None and os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def _signal(process: subprocess.Popen[Any], group: bool, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)


def stop_process(
    process: subprocess.Popen[Any],
    timeout: float = DEFAULT_STOP_TIMEOUT,
    *,
    group: bool | None = None,
) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; to its process group if it leads one.

    A process started with ``start_new_session=True`` leads its own group: the whole
    group is signalled, so helpers it started go too. ``group=None`` finds that out.
    """
    if group is None:
        group = _leads_own_group(process)
    _signal(process, group, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal(process, group, signal.SIGKILL)
        process.wait()
    if group:
        # Whatever else of the group ignored SIGTERM and outlived its leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


class SubprocessService:
    """A service that is a command: started in its own process group, stopped with its group.

    ``ready`` is polled until it returns True (e.g. ``lambda: port_is_open(host, port)``);
    ``info`` is what :meth:`start` returns, with ``pid`` added. The command's output
    goes to a log file in a temporary directory, quoted when the start fails, and the
    directory is removed by :meth:`stop`.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        info: Mapping[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        if not command:
            raise ServiceError(f"service {name!r}: the command is empty")
        self.name = name
        self.command = [str(part) for part in command]
        self.info = dict(info or {})
        self.ready = ready
        self.env = None if env is None else dict(env)
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.directory: Path | None = None

    @property
    def log_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "output.log"

    def start(self) -> dict[str, str]:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.name)
        self.directory = Path(tempfile.mkdtemp(prefix=f"testfleet-{safe}-"))
        with (self.directory / "output.log").open("wb") as log:
            # A session of its own: Ctrl-C in the terminal reaches pytest, which then
            # stops the service after the workers, instead of killing it under them.
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServiceError(
                    f"{json.dumps(self.command)} exited with status {code} while starting; "
                    f"its output:\n{self._log_tail()}"
                )
            if self.ready is None or self.ready():
                break
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{json.dumps(self.command)} was not ready within {self.start_timeout:g} s; "
                    f"its output:\n{self._log_tail()}"
                )
            time.sleep(0.05)
        return {**self.info, "pid": str(self.process.pid)}

    def _log_tail(self, limit: int = 2000) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(none)"
        text = path.read_bytes()[-limit:].decode("utf-8", "replace").strip()
        return text or "(none)"

    def stop(self) -> None:
        # Forget the process only once it is stopped, so that an interrupted stop()
        # can be called again.
        if self.process is not None:
            stop_process(self.process, self.stop_timeout, group=True)
            self.process = None
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
