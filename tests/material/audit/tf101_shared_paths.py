# ruff: noqa
"""TF101: hardcoded shared paths, and look-alikes that are fine."""

import os
import shutil
import tempfile
from pathlib import Path

LOG_DIR = "logs/app"


def test_writes_to_tmp():
    with open("/tmp/app-out.json", "w") as out:  # TF101
        out.write("{}")


def test_reads_the_reports_directory():
    assert Path("reports/summary.md").exists()  # TF101


def test_logs_through_a_constant():
    os.makedirs(LOG_DIR)  # TF101


def test_temp_dir_inside_a_shared_directory():
    tempfile.mkdtemp(dir="/var/tmp/myapp")  # TF101


def test_removes_a_shared_cache():
    shutil.rmtree(f"/tmp/cache-{os.getpid()}")  # TF101


def test_uses_tmp_path(tmp_path):
    (tmp_path / "reports" / "x.json").write_text("{}")


def test_reads_data_next_to_the_test():
    assert (Path(__file__).parent / "logs").name == "logs"


def test_mentions_tmp_in_a_message():
    assert "/tmp/x" in "see /tmp/x"


def helper_that_is_no_test():
    open("/tmp/helper.txt", "w").close()


REPORT = "reports/run.json"
SOCKET = Path("/tmp/app.sock")  # TF101


def test_passes_a_relative_path_as_a_value(cli):
    assert cli(["report", REPORT, "--output", str(Path(REPORT))]) == 0


def test_removes_a_shared_socket():
    SOCKET.unlink()


def test_writes_a_fixed_name_in_the_temp_dir():
    (Path(tempfile.gettempdir()) / "app-state.json").write_text("{}")  # TF101


def test_writes_beside_its_tmp_path(tmp_path):
    (tmp_path.parent / "shared.lock").touch()  # TF101


def test_joins_the_temp_dir():
    with open(os.path.join(tempfile.gettempdir(), "cache.db"), "w"):  # TF101
        pass


def test_makes_a_unique_dir_in_the_temp_dir():
    tempfile.mkdtemp(dir=tempfile.gettempdir())


def test_writes_inside_its_tmp_path(tmp_path):
    (tmp_path / "state.json").write_text("{}")
