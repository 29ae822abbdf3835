"""Run-once services: started once before the workers, stopped after them, however the run ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from testfleet.isolation import services

# The service is a real HTTP server on a free loopback port. Its start() and stop()
# log to files, so that the outer test can count them and find the process after.
SERVICE_CONFTEST = """
import sys
from pathlib import Path

from testfleet.isolation.services import SubprocessService, free_port, port_is_open

STATE = Path(__file__).parent / "state"


class CountedServer(SubprocessService):
    def start(self):
        STATE.mkdir(exist_ok=True)
        with (STATE / "starts").open("a") as log:
            log.write("start\\n")
        info = super().start()
        (STATE / "service.json").write_text(
            '{"pid": %s, "directory": "%s"}' % (info["pid"], self.directory)
        )
        return info

    def stop(self):
        with (STATE / "stops").open("a") as log:
            log.write("stop\\n")
        super().stop()


def pytest_testfleet_services(config):
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    return [
        CountedServer(
            "web",
            command,
            info={"url": f"http://127.0.0.1:{port}/"},
            ready=lambda: port_is_open("127.0.0.1", port),
        )
    ]
"""

USING_TESTS = """
import json
import os
import urllib.request
from pathlib import Path

import pytest

SEEN = Path(__file__).parent / "state" / "seen"


@pytest.mark.parametrize("n", range(12))
def test_uses_the_service(testfleet_service, n):
    info = testfleet_service("web")
    with urllib.request.urlopen(info["url"], timeout=5) as response:
        assert response.status == 200
    SEEN.mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (SEEN / f"{n}.json").write_text(json.dumps({"worker": worker, "info": info}))
"""


def write_suite(pytester: pytest.Pytester, extra: str = "") -> None:
    pytester.makeconftest(SERVICE_CONFTEST)
    pytester.makepyfile(test_uses=USING_TESTS)
    if extra:
        pytester.makepyfile(test_extra=extra)


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process; a zombie runs nothing, so it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def assert_started_once_and_gone(pytester: pytest.Pytester) -> dict[str, object]:
    """The service started and stopped exactly once, and neither process nor files remain."""
    state = pytester.path / "state"
    assert (state / "starts").read_text().splitlines() == ["start"]
    assert (state / "stops").read_text().splitlines() == ["stop"]
    service = json.loads((state / "service.json").read_text())
    assert not is_running(int(service["pid"])), "the service outlived the run"
    assert not Path(service["directory"]).exists(), "the service's directory was left behind"
    return dict(service)


def seen(pytester: pytest.Pytester) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in (pytester.path / "state" / "seen").iterdir()]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_a_service_starts_once_for_four_workers_and_every_worker_gets_its_info(
    pytester: pytest.Pytester,
) -> None:
    write_suite(pytester)
    result = run(pytester, "-n", "4")
    result.assert_outcomes(passed=12)
    service = assert_started_once_and_gone(pytester)
    records = seen(pytester)
    assert {str(r["worker"]) for r in records} == {"gw0", "gw1", "gw2", "gw3"}
    infos = {json.dumps(r["info"], sort_keys=True) for r in records}
    assert len(infos) == 1
    (info,) = (r["info"] for r in records[:1])
    assert isinstance(info, dict)
    assert info["pid"] == str(service["pid"])
    assert str(info["url"]).startswith("http://127.0.0.1:")


def test_a_serial_run_starts_and_stops_the_service_the_same_way(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = run(pytester, "-p", "no:xdist")
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["testfleet: services started: web (*s)"])
    assert_started_once_and_gone(pytester)
    assert {r["worker"] for r in seen(pytester)} == {"main"}


def test_the_service_is_stopped_after_failing_tests_and_a_crashed_worker(
    pytester: pytest.Pytester,
) -> None:
    write_suite(
        pytester,
        """
        import os

        def test_fails():
            assert False

        def test_crashes_its_worker():
            os._exit(1)
        """,
    )
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=12, failed=2)
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running*test_crashes_its_worker*"])
    assert_started_once_and_gone(pytester)


@pytest.mark.parametrize("distribution", [["-n", "2"], ["-p", "no:xdist"]])
def test_the_service_is_stopped_after_an_interrupted_run(
    pytester: pytest.Pytester, distribution: list[str]
) -> None:
    write_suite(pytester, "def test_interrupts():\n    raise KeyboardInterrupt\n")
    result = run(pytester, *distribution)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_started_once_and_gone(pytester)


def test_the_service_is_stopped_when_ctrl_c_comes_before_the_first_test(
    pytester: pytest.Pytester,
) -> None:
    # pytest skips pytest_sessionfinish when pytest_sessionstart is interrupted; the
    # service, started by then, must still be stopped.
    write_suite(pytester)
    pytester.makepyfile(
        conftest_plugin="""
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_sessionstart(session):
            raise KeyboardInterrupt
        """
    )
    result = run(pytester, "-p", "conftest_plugin", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert_started_once_and_gone(pytester)


def test_the_controller_stops_the_service_when_it_gets_ctrl_c(pytester: pytest.Pytester) -> None:
    write_suite(pytester, WAITING_TEST)
    # Ctrl-C in a terminal signals the whole foreground process group: controller and
    # workers. The run gets a group of its own here, so that only it is signalled, and
    # SIGINT's default action: a suite started in the background inherits it ignored.
    process = start_waiting_run(pytester, sigint=signal.SIG_DFL)
    try:
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(30) == pytest.ExitCode.INTERRUPTED
    finally:
        end(process)
    assert_started_once_and_gone(pytester)


def test_a_run_with_sigint_ignored_stops_its_service_when_it_gets_sigterm(
    pytester: pytest.Pytester,
) -> None:
    # `cmd &` and nohup start a run with SIGINT ignored: Ctrl-C cannot reach it, SIGTERM
    # (what `kill` and CI runners send) stops it, and the service must not outlive it.
    write_suite(pytester, WAITING_TEST)
    process = start_waiting_run(pytester, sigint=signal.SIG_IGN)
    try:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(30) == pytest.ExitCode.INTERRUPTED
    finally:
        end(process)
    assert_started_once_and_gone(pytester)


def test_a_run_with_sigint_ignored_and_no_stdin_stops_its_service_at_the_end(
    pytester: pytest.Pytester,
) -> None:
    write_suite(pytester)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-n", "2"],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        output, _ = process.communicate(timeout=120)
    finally:
        end(process)
    assert process.returncode == pytest.ExitCode.OK, output
    assert_started_once_and_gone(pytester)


WAITING_TEST = """
import time
from pathlib import Path

def test_waits():
    (Path(__file__).parent / "state" / "waiting").touch()
    time.sleep(30)
"""


def start_waiting_run(
    pytester: pytest.Pytester, sigint: signal.Handlers
) -> subprocess.Popen[bytes]:
    """An inner `-n 2` run in a session of its own, with SIGINT set to ``sigint``, in its test."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-n", "2", "-k", "waits"],
        cwd=pytester.path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # The child's disposition is set, not inherited: the outer suite may itself run
        # with SIGINT ignored (a background job), and exec keeps an ignored signal ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    deadline = time.monotonic() + 30
    try:
        while not (pytester.path / "state" / "waiting").exists():
            assert time.monotonic() < deadline, "the inner run never reached its test"
            assert process.poll() is None, "the inner run ended early"
            time.sleep(0.05)
    except BaseException:
        end(process)
        raise
    return process


def end(process: subprocess.Popen[Any]) -> None:
    """Kill ``process`` and its session if it still runs (a failed assertion above)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


BROKEN_CONFTEST = """
import sys
from pathlib import Path

from testfleet.isolation.services import SubprocessService

STATE = Path(__file__).parent / "state"


class Logged(SubprocessService):
    def stop(self):
        STATE.mkdir(exist_ok=True)
        with (STATE / "stops").open("a") as log:
            log.write(f"{self.name} {self.process.pid}\\n")
        super().stop()


def pytest_testfleet_services(config):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    broken = [sys.executable, "-c", "import sys; print('no licence'); sys.exit(3)"]
    return [Logged("first", sleeper), Logged("second", broken, ready=lambda: False)]
"""


def test_a_service_that_fails_to_start_stops_the_run_and_the_services_started_before_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(BROKEN_CONFTEST)
    pytester.makepyfile("def test_never_runs():\n    pass\n")
    result = run(pytester, "-n", "2")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stderr.fnmatch_lines(
        [
            "*testfleet: service 'second' did not start: *exited with status 3 while starting;"
            " its output:",
            "no licence",
        ]
    )
    assert "bringing up nodes" not in result.stdout.str()
    assert "test_never_runs" not in result.stdout.str()
    # Both got their stop(), the half-started one too, the last started first.
    stops = [line.split() for line in (pytester.path / "state" / "stops").read_text().splitlines()]
    assert [name for name, _ in stops] == ["second", "first"]
    assert not any(is_running(int(pid)) for _, pid in stops)


@pytest.mark.parametrize(
    ("hook_body", "message"),
    [
        ("return [Named('db'), Named('db')]", "two services are named 'db': give each service"),
        ("return [object()]", "returned <object object at *> without a name: give it"),
        ("return Named('db')", "pytest_testfleet_services returned <*Named*>: return a list"),
        ("return [Named('db', info={'port': 7687})]", "*start() returned {'port': 7687}*str()*"),
    ],
)
def test_a_wrongly_declared_service_is_refused_with_a_message_saying_what_to_fix(
    pytester: pytest.Pytester, hook_body: str, message: str
) -> None:
    pytester.makeconftest(
        f"""
        class Named:
            def __init__(self, name, info=None):
                self.name = name
                self.info = info or {{}}

            def start(self):
                return self.info

            def stop(self):
                pass

        def pytest_testfleet_services(config):
            {hook_body}
        """
    )
    pytester.makepyfile("def test_a():\n    pass\n")
    result = run(pytester, "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stderr.fnmatch_lines([f"*testfleet: *{message}*"])


def test_a_service_that_does_not_stop_is_reported_and_fails_a_passing_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        class Stuck:
            name = "stuck"

            def start(self):
                return {}

            def stop(self):
                raise RuntimeError("port 7687 still bound")

        def pytest_testfleet_services(config):
            return [Stuck()]
        """
    )
    pytester.makepyfile("def test_a():\n    pass\n")
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        [
            "testfleet: service 'stuck' did not stop: RuntimeError: port 7687 still bound; "
            "it may still be running"
        ]
    )


def test_asking_for_an_unknown_service_names_the_services_there_are(
    pytester: pytest.Pytester,
) -> None:
    write_suite(
        pytester,
        """
        import pytest
        from testfleet.isolation.services import UnknownServiceError

        def test_unknown(testfleet_service):
            with pytest.raises(UnknownServiceError) as info:
                testfleet_service("db")
            assert str(info.value).startswith(
                "no service named 'db': the services of this run are 'web'. Declare services by "
                "implementing pytest_testfleet_services(config) in a conftest.py"
            )
        """,
    )
    run(pytester, "-n", "2").assert_outcomes(passed=13)


def test_a_run_without_services_says_so_when_a_test_asks_for_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_unknown(testfleet_service):
            with pytest.raises(LookupError, match="no service named 'db': this run has no serv"):
                testfleet_service("db")
        """
    )
    run(pytester, "-n", "2").assert_outcomes(passed=1)


class Recorder:
    """A service that records its calls in a shared list."""

    def __init__(self, name: str, calls: list[str], fail_stop: bool = False) -> None:
        self.name = name
        self.calls = calls
        self.fail_stop = fail_stop

    def start(self) -> dict[str, str]:
        self.calls.append(f"start {self.name}")
        return {"name": self.name}

    def stop(self) -> None:
        self.calls.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("port still bound")


def test_services_stop_last_first_once_each_even_when_one_fails_to_stop() -> None:
    calls: list[str] = []
    manager = services.ServiceManager(
        [Recorder("a", calls), Recorder("b", calls, fail_stop=True), Recorder("c", calls)]
    )
    manager.start_all()
    assert manager.info == {"a": {"name": "a"}, "b": {"name": "b"}, "c": {"name": "c"}}
    errors = manager.stop_all()
    assert errors == ["service 'b' did not stop: RuntimeError: port still bound"]
    assert manager.stop_all() == []
    assert calls == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]
    assert manager.info == {}


def test_a_subprocess_service_that_ignores_sigterm_is_killed_with_its_children(
    tmp_path: Path,
) -> None:
    child_pid = tmp_path / "child.pid"
    script = (
        "import signal, subprocess, sys, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        f"pathlib.Path({str(child_pid)!r}).write_text(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    service = services.SubprocessService(
        "stubborn", [sys.executable, "-c", script], ready=child_pid.exists, stop_timeout=0.3
    )
    info = service.start()
    pids = [int(info["pid"]), int(child_pid.read_text())]
    assert all(is_running(pid) for pid in pids)
    began = time.monotonic()
    service.stop()
    assert time.monotonic() - began >= 0.3
    deadline = time.monotonic() + 5
    while any(is_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(is_running(pid) for pid in pids)
    service.stop()


def test_a_subprocess_service_that_is_never_ready_fails_with_its_output(tmp_path: Path) -> None:
    service = services.SubprocessService(
        "slow",
        [sys.executable, "-c", "print('warming up', flush=True); import time; time.sleep(60)"],
        ready=lambda: False,
        start_timeout=0.3,
    )
    try:
        with pytest.raises(services.ServiceError, match=r"not ready within 0\.3 s; its output:"):
            service.start()
        assert service.process is not None
        pid = service.process.pid
    finally:
        service.stop()
    assert not is_running(pid)


def test_a_free_port_is_closed_until_something_listens_on_it() -> None:
    port = services.free_port()
    assert not services.port_is_open("127.0.0.1", port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert services.port_is_open("127.0.0.1", port)


def test_stop_process_stops_a_process_that_does_not_lead_a_group_of_its_own() -> None:
    # Its pid names no process group: the process itself must get the signal.
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as process:
        services.stop_process(process, timeout=5)
        assert process.returncode == -signal.SIGTERM
