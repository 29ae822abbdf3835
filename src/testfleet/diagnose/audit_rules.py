"""The rules of the static isolation audit, and the AST walk that applies them to one module."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

LOW, MEDIUM, HIGH = "low", "medium", "high"
SEVERITIES = (LOW, MEDIUM, HIGH)
ONE_LINE, MODERATE, MAJOR = "1-2 lines", "moderate", "major"


@dataclass(frozen=True)
class Rule:
    """One kind of isolation hazard: what it is, why it breaks parallel runs, how to fix it."""

    id: str
    severity: str
    title: str
    why: str
    fix: str
    effort: str


@dataclass(frozen=True)
class Hit:
    """A rule's finding at one line of a module, before silencing."""

    line: int
    rule: str
    detail: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "TF101",
            HIGH,
            "hardcoded shared path",
            "every worker (and every run on the machine) reads and writes the same file, "
            "so tests overwrite, delete or read each other's files",
            "use `tmp_path`, or `testfleet_worker_dir` / `testfleet_redirect` for a "
            "directory the application takes from settings or the environment",
            ONE_LINE,
        ),
        Rule(
            "TF102",
            MEDIUM,
            "working directory used as scratch space",
            "all workers share the working directory, and `os.chdir` outlives the test "
            "in its worker, so files collide and later tests run elsewhere",
            "write under `tmp_path`; change directory with `monkeypatch.chdir(tmp_path)`",
            ONE_LINE,
        ),
        Rule(
            "TF103",
            HIGH,
            "module- or class-level state mutated by a test",
            "each worker has its own copy: a test that relies on what another test added "
            "sees it only when both run on the same worker, in that order",
            "build the object in a function-scoped fixture (or a new instance per test) "
            "and let the tests that need it ask for it",
            MODERATE,
        ),
        Rule(
            "TF104",
            MEDIUM,
            "broad-scoped fixture returns a mutable object",
            "every test of the session (or module, class) on a worker gets the same object: "
            "one test's change reaches the tests that follow it on that worker only",
            "return an immutable value (tuple, frozenset, `types.MappingProxyType`) or a "
            "copy from a function-scoped fixture built on this one",
            ONE_LINE,
        ),
        Rule(
            "TF105",
            HIGH,
            "hardcoded port",
            "two workers (or two runs) bind or reach the same port: one fails with "
            "'address in use' or talks to the other's server",
            "start the server once as a run-once service (`pytest_testfleet_services`, "
            "`testfleet.services.free_port()`) and read its address from `testfleet_service`",
            MODERATE,
        ),
        Rule(
            "TF106",
            HIGH,
            "hardcoded database or collection name",
            "every worker uses the same database or collection: one test's writes and "
            "cleanup land in the middle of another's",
            "name it with `testfleet_unique_name(...)`, hand out fixed ones with "
            "`testfleet_pool`; for Neo4j use `neo4j_isolation.database` or `neo4j_label` "
            "(docs/neo4j.md)",
            MODERATE,
        ),
        Rule(
            "TF107",
            HIGH,
            "settings or environment mutated without restoring",
            "the change outlives the test in its worker: the tests that happen to follow "
            "it there see other settings than in a serial run",
            "`testfleet_redirect.attr(...)` / `.env(...)` for paths, else "
            "`monkeypatch.setattr` / `monkeypatch.setenv`, which restore the old value",
            ONE_LINE,
        ),
        Rule(
            "TF108",
            MEDIUM,
            "fixed sleep used to wait",
            "a fixed pause waits for something that happens elsewhere (another test, worker "
            "or process); under parallel load it comes later, or on another worker, or never",
            "create what the test waits for in a fixture, or poll for the condition with a "
            "deadline; start shared processes with `testfleet_service`",
            MODERATE,
        ),
        Rule(
            "TF109",
            HIGH,
            "cleanup deletes by a shared prefix or pattern",
            "the pattern also matches what tests on other workers created, and deletes it "
            "under them",
            "delete exactly the names the test made (`testfleet_unique_name`), or clean a "
            "per-worker place (`testfleet_worker_dir`, `testfleet_pool`, the Neo4j "
            "`namespace` strategy's label)",
            MODERATE,
        ),
        Rule(
            "TF110",
            MEDIUM,
            "test reads data it did not create",
            "the data exists only when the test that writes it ran earlier on the same "
            "worker; in random order or on another worker it is missing",
            "create the data in the test or in a fixture it asks for, under a name of its "
            "own (`testfleet_unique_name`)",
            MAJOR,
        ),
    )
}

FIXTURE_SCOPES_SHARED = {"session", "package", "module", "class"}
SETUP_NAMES = {
    "setup_method",
    "teardown_method",
    "setup_function",
    "teardown_function",
    "setup_class",
    "teardown_class",
    "setup_module",
    "teardown_module",
    "setUp",
    "tearDown",
    "setUpClass",
    "tearDownClass",
}
MUTABLE_CALLS = {
    "list",
    "dict",
    "set",
    "bytearray",
    "collections.defaultdict",
    "collections.OrderedDict",
    "collections.Counter",
    "collections.deque",
}
MUTATORS = {
    "append",
    "appendleft",
    "extend",
    "extendleft",
    "insert",
    "remove",
    "pop",
    "popleft",
    "popitem",
    "clear",
    "add",
    "discard",
    "update",
    "setdefault",
    "sort",
    "reverse",
}
# Calls whose (first) argument is a path; the ones that write or delete are what make a
# relative path a collision in the shared working directory.
READ_PATH_CALLS = {"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "os.path.join"}
WRITE_PATH_CALLS = {
    "os.makedirs",
    "os.mkdir",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "shutil.rmtree",
    "shutil.copy",
    "shutil.copy2",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.move",
    "sqlite3.connect",
    "logging.FileHandler",
}
PATH_WRITE_METHODS = {"write_text", "write_bytes", "touch", "mkdir", "unlink", "rmdir"}
PATH_READ_METHODS = {"read_text", "read_bytes", "exists", "is_file", "is_dir", "stat"}
SHARED_ABSOLUTE = re.compile(r"^/(tmp|var/tmp|dev/shm)(/|$)")
SHARED_RELATIVE = re.compile(r"^(\./)?(reports|logs?|tmp|output|out|results)(/|$)")
CONNECT_CALLS = {
    "driver",
    "connect",
    "create_connection",
    "urlopen",
    "Request",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "request",
    "Redis",
    "StrictRedis",
    "from_url",
    "MongoClient",
    "create_engine",
    "Client",
    "AsyncClient",
    "HTTPConnection",
    "HTTPSConnection",
}
SOCKET_CALLS = {"bind", "connect", "connect_ex", "create_connection", "create_server"}
URL_WITH_PORT = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+(?::[^/\s@]*@[^/\s:]+)?:(\d+)")
DB_KEYWORDS = {
    "database",
    "db",
    "db_name",
    "dbname",
    "database_name",
    "collection",
    "collection_name",
    "table",
    "table_name",
    "index_name",
    "keyspace",
    "bucket",
    "bucket_name",
    "queue",
    "queue_name",
    "topic",
}
DB_CALLS = {
    "get_database",
    "get_collection",
    "create_collection",
    "create_database",
    "drop_collection",
    "drop_database",
    "create_table",
    "drop_table",
    "get_table",
}
QUERY_CALLS = {"run", "execute", "executemany", "executescript", "query", "execute_query"}
# Query text is matched with regular expressions: the AST ends at the string literal.
QUERY_WRITE = re.compile(
    r"\b(CREATE|MERGE|INSERT|UPDATE|SET|DELETE|REMOVE|DROP|TRUNCATE|REPLACE)\b", re.I
)
QUERY_READ = re.compile(r"^\s*(OPTIONAL\s+MATCH|MATCH|SELECT)\b", re.I)
QUERY_DB_NAME = re.compile(r"\b(CREATE|DROP)\s+DATABASE\s+(?!IF\b)([A-Za-z_]\w*)", re.I)
QUERY_DELETE = re.compile(r"\b(DELETE|TRUNCATE)\b", re.I)
QUERY_PATTERN_DELETE = re.compile(r"\b(STARTS\s+WITH|ENDS\s+WITH|CONTAINS|LIKE)\b|=~", re.I)
QUERY_DELETE_ALL = re.compile(
    r"^(TRUNCATE\b|DELETE\s+FROM\s+\S+;?$|MATCH\s*\(\w*(:\w+)?\)\s*(DETACH\s+)?DELETE\b)", re.I
)
DATA_READ_METHODS = {"find", "find_one", "count_documents"}
DATA_WRITE_METHODS = re.compile(r"^(insert|create|add|save|put|set|write|update|merge|upsert|load)")
# Fixtures that only give a connection: a test that asks for nothing else has no fixture
# that could have created the data it reads.
CONNECTION_FIXTURES = {
    "neo4j_session",
    "neo4j_driver",
    "neo4j_connection",
    "neo4j_isolation",
    "neo4j_label",
    "session",
    "db",
    "database",
    "conn",
    "connection",
    "client",
    "cursor",
    "tx",
    "engine",
    "redis",
}
DELETE_CALLS = {
    "rmtree",
    "remove",
    "unlink",
    "rmdir",
    "delete",
    "drop",
    "delete_many",
    "drop_collection",
}
# Directories that belong to one test or one worker: deleting by pattern there is safe.
PRIVATE_ROOTS = {"tmp_path", "tmpdir", "tmp_path_factory", "testfleet_worker_dir", "pytester"}
LISTING_CALLS = {"glob", "iglob", "rglob", "listdir", "iterdir", "scandir", "keys", "scan_iter"}


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def text_of(node: ast.AST) -> str | None:
    """The text of a string literal; an f-string's literal parts with ``{}`` for the holes."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
    return None


def is_port(node: ast.AST) -> bool:
    """An integer literal that names a real port (0 asks the OS for a free one)."""
    return isinstance(node, ast.Constant) and type(node.value) is int and 0 < node.value < 65536


def node_line(node: ast.AST) -> int:
    """The line a node starts on (0 for nodes without one)."""
    line = getattr(node, "lineno", 0)
    return line if isinstance(line, int) else 0


def walk_shallow(node: ast.AST) -> Iterator[ast.AST]:
    """Like ``ast.walk`` over a function's body, without entering nested functions."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(child))


@dataclass
class Scope:
    """A function whose body runs as part of a test: a test, a fixture, a setup method."""

    node: ast.FunctionDef | ast.AsyncFunctionDef
    kind: str  # "test", "fixture" or "setup"
    cls: ast.ClassDef | None
    fixture_scope: str = "function"


class ModuleAudit:
    """Apply every rule to one parsed module."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.hits: list[Hit] = []
        self.aliases: dict[str, str] = {}
        self.imported: set[str] = set()
        self.mutable_globals: dict[str, int] = {}
        self.strings: dict[str, str] = {}
        self.module_names: set[str] = set()
        self.classes: dict[str, ast.ClassDef] = {}
        self.scopes: list[Scope] = []
        self._mutations: list[tuple[ast.AST, str, str]] = []
        self._index_module()

    # -- what the module defines ------------------------------------------------------

    def _index_module(self) -> None:
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.aliases[bound] = alias.name if alias.asname else bound
                    self.imported.add(bound)
            elif isinstance(stmt, ast.ImportFrom) and stmt.module and not stmt.level:
                for alias in stmt.names:
                    bound = alias.asname or alias.name
                    self.aliases[bound] = f"{stmt.module}.{alias.name}"
                    self.imported.add(bound)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.module_names.add(target.id)
                        if self.is_mutable(stmt.value):
                            self.mutable_globals[target.id] = stmt.lineno
                        value = stmt.value
                        # OUT = Path("/tmp/out") names the same file as OUT = "/tmp/out".
                        if (
                            isinstance(value, ast.Call)
                            and self.qualified(value.func) in READ_PATH_CALLS
                            and len(value.args) == 1
                        ):
                            value = value.args[0]
                        text = text_of(value)
                        if text is not None and value is stmt.value:
                            self.strings[target.id] = text
                        elif text is not None and not SHARED_ABSOLUTE.match(text):
                            # A Path under /tmp is reported where it is built, not at each use.
                            self.strings[target.id] = text
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self.module_names.add(stmt.name)
                self._add_scope(stmt, None)
            elif isinstance(stmt, ast.ClassDef):
                self.module_names.add(stmt.name)
                self.classes[stmt.name] = stmt
                is_test_class = stmt.name.startswith("Test") or any(
                    (dotted(base) or "").endswith("TestCase") for base in stmt.bases
                )
                for item in stmt.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self._add_scope(item, stmt if is_test_class else None, in_class=True)

    def _add_scope(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        cls: ast.ClassDef | None,
        *,
        in_class: bool = False,
    ) -> None:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.qualified(target).endswith("fixture"):
                scope = "function"
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        value = text_of(keyword.value)
                        if keyword.arg == "scope" and value is not None:
                            scope = value
                self.scopes.append(Scope(node, "fixture", cls, scope))
                return
        if in_class and cls is None:
            return
        if node.name.startswith("test"):
            self.scopes.append(Scope(node, "test", cls))
        elif node.name in SETUP_NAMES:
            self.scopes.append(Scope(node, "setup", cls))

    def qualified(self, node: ast.AST) -> str:
        """The dotted name of ``node``, import aliases resolved: ``sleep`` -> ``time.sleep``."""
        name = dotted(node)
        if name is None:
            return ""
        root, _, rest = name.partition(".")
        base = self.aliases.get(root, root)
        return f"{base}.{rest}" if rest else base

    def is_mutable(self, node: ast.AST) -> bool:
        """A literal or constructor call that builds a mutable container."""
        if isinstance(
            node, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp
        ):
            return True
        return isinstance(node, ast.Call) and self.qualified(node.func) in MUTABLE_CALLS

    # -- the walk ---------------------------------------------------------------------

    def run(self) -> list[Hit]:
        """Every rule's hits in this module, in no particular order."""
        if self.scopes:
            # Module-level statements of a test module run for its tests too.
            top = [
                stmt
                for stmt in self.tree.body
                if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ]
            for stmt in top:
                self._check_module_statement(stmt)
        for scope in self.scopes:
            self._check_scope(scope)
        self._check_shared_files()
        return self.hits

    def _hit(self, node: ast.AST, rule: str, detail: str) -> None:
        self.hits.append(Hit(node_line(node), rule, detail))

    def _check_module_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign) and is_port(stmt.value):
            for target in stmt.targets:
                if isinstance(target, ast.Name) and "PORT" in target.id.upper():
                    self._hit(stmt, "TF105", f"`{target.id} = {ast.unparse(stmt.value)}`")
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call):
                self._check_path_call(node, frozenset())
                self._check_port_call(node)

    def _check_scope(self, scope: Scope) -> None:
        func = scope.node
        params = {
            arg.arg for arg in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)
        }
        declared_global = {
            name for node in ast.walk(func) if isinstance(node, ast.Global) for name in node.names
        }
        stored = {
            node.id
            for node in ast.walk(func)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        local = frozenset((stored | params) - declared_global)
        restored = self._restored_lines(func)
        self._mutations = []
        for node in ast.walk(func):
            if isinstance(node, ast.Call):
                self._check_path_call(node, local)
                self._check_port_call(node)
                self._check_db_call(node)
                self._check_query(node)
                self._check_env_call(node)
            self._check_state(node, scope, local, declared_global)
            self._check_settings(node, local)
            if isinstance(node, ast.For):
                self._check_pattern_cleanup(node)
        # A change undone at teardown (after a fixture's yield, in a finally) is the
        # hand-written form of monkeypatch: neither it nor the lines that undo it count.
        undone = {key for node, key, _ in self._mutations if node_line(node) in restored}
        for node, key, detail in self._mutations:
            if key not in undone:
                self._hit(node, "TF107", detail)
        self._check_sleep(func)
        if scope.kind == "fixture" and scope.fixture_scope in FIXTURE_SCOPES_SHARED:
            self._check_fixture_value(scope)
        if scope.kind == "test":
            self._check_unseeded_read(func, params)

    # -- TF101, TF102: paths ------------------------------------------------------------

    def _path_text(self, node: ast.AST, local: frozenset[str]) -> tuple[str, str] | None:
        """The literal path an expression starts with, and how to show it."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._path_text(node.left, local)
        if (
            isinstance(node, ast.Call)
            and self.qualified(node.func) in READ_PATH_CALLS
            and node.args
        ):
            return self._path_text(node.args[0], local)
        text = text_of(node)
        if text is not None:
            return text, repr(text)
        if isinstance(node, ast.Name) and node.id not in local and node.id in self.strings:
            return self.strings[node.id], f"{node.id} ({self.strings[node.id]!r})"
        return None

    def _check_path_call(self, call: ast.Call, local: frozenset[str]) -> None:
        name = self.qualified(call.func)
        writes = name in WRITE_PATH_CALLS
        candidates: list[ast.AST] = []
        if name in {"open", "io.open", "builtins.open"} and call.args:
            writes = self._write_mode(call, 1)
            candidates.append(call.args[0])
        elif name in READ_PATH_CALLS and call.args:
            # Only a path under /tmp is shared wherever it is used; a relative one such as
            # "reports/x.json" may be resolved against a test's own directory (a CLI
            # argument, pytester's cwd), so it counts only where a file is touched.
            found = self._path_text(call.args[0], local)
            if found is not None and SHARED_ABSOLUTE.match(found[0]):
                self._hit(call.args[0], "TF101", f"the shared path {found[1]}")
            return
        elif isinstance(call.func, ast.Attribute) and call.func.attr in PATH_READ_METHODS:
            candidates.append(call.func.value)
        elif writes:
            candidates.extend(call.args[:2] if name.startswith("shutil.") else call.args[:1])
        elif isinstance(call.func, ast.Attribute) and (
            call.func.attr in PATH_WRITE_METHODS
            or (call.func.attr == "open" and self._write_mode(call, 0))
        ):
            writes = True
            candidates.append(call.func.value)
        elif name in {"os.getcwd", "pathlib.Path.cwd"}:
            self._hit(call, "TF102", f"`{ast.unparse(call)}`")
        elif name == "os.chdir":
            self._hit(call, "TF102", f"`{ast.unparse(call)}` outlives the test")
        if name.startswith("tempfile."):
            candidates.extend(kw.value for kw in call.keywords if kw.arg == "dir")
        for candidate in candidates:
            found = self._path_text(candidate, local)
            if found is None:
                continue
            text, shown = found
            if SHARED_ABSOLUTE.match(text) or SHARED_RELATIVE.match(text):
                self._hit(candidate, "TF101", f"the shared path {shown}")
            elif writes and text and not text.startswith(("/", "~", ":memory:", "{}")):
                self._hit(candidate, "TF102", f"the relative path {shown} is written")

    @staticmethod
    def _write_mode(call: ast.Call, position: int) -> bool:
        mode: ast.AST | None = call.args[position] if len(call.args) > position else None
        for keyword in call.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
        text = text_of(mode) if mode is not None else None
        return text is not None and any(flag in text for flag in "wax+")

    # -- TF105, TF106: ports and names -----------------------------------------------------

    def _check_port_call(self, call: ast.Call) -> None:
        last = call.func.attr if isinstance(call.func, ast.Attribute) else self.qualified(call.func)
        last = last.rsplit(".", 1)[-1]
        for keyword in call.keywords:
            if keyword.arg == "port" and is_port(keyword.value):
                self._hit(keyword.value, "TF105", f"`port={ast.unparse(keyword.value)}`")
        if last in SOCKET_CALLS:
            for arg in call.args:
                if isinstance(arg, ast.Tuple) and len(arg.elts) == 2 and is_port(arg.elts[1]):
                    self._hit(arg, "TF105", f"`{ast.unparse(arg)}`")
        if last in CONNECT_CALLS:
            for arg in call.args:
                text = text_of(arg)
                match = URL_WITH_PORT.match(text) if text else None
                if match:
                    self._hit(arg, "TF105", f"port {match.group(1)} in {text!r}")

    def _check_db_call(self, call: ast.Call) -> None:
        for keyword in call.keywords:
            text = text_of(keyword.value)
            if keyword.arg in DB_KEYWORDS and text and "{}" not in text:
                self._hit(keyword.value, "TF106", f"`{keyword.arg}={text!r}`")
        if isinstance(call.func, ast.Attribute) and call.func.attr in DB_CALLS and call.args:
            text = text_of(call.args[0])
            if text and "{}" not in text:
                self._hit(call, "TF106", f"`{call.func.attr}({text!r})`")

    # -- queries: TF106, TF109 ----------------------------------------------------------

    @staticmethod
    def query_of(call: ast.Call) -> str | None:
        """The query text of ``session.run("MATCH ...")`` or ``cursor.execute(...)``, if literal."""
        if not (isinstance(call.func, ast.Attribute) and call.func.attr in QUERY_CALLS):
            return None
        if not call.args:
            return None
        text = text_of(call.args[0])
        return None if text is None else " ".join(text.split())

    def _check_query(self, call: ast.Call) -> None:
        query = self.query_of(call)
        if query is None:
            return
        named = QUERY_DB_NAME.search(query)
        if named:
            self._hit(call, "TF106", f"`{named.group(0)}`")
        if QUERY_DELETE.search(query) is None:
            return
        if QUERY_PATTERN_DELETE.search(query):
            self._hit(call, "TF109", f"{query!r} deletes what matches a pattern")
        elif QUERY_DELETE_ALL.match(query):
            self._hit(call, "TF109", f"{query!r} deletes everything of its kind")

    def _check_pattern_cleanup(self, loop: ast.For) -> None:
        listing = loop.iter
        if not (
            isinstance(listing, ast.Call) and isinstance(listing.func, ast.Attribute | ast.Name)
        ):
            return
        last = self.qualified(listing.func).rsplit(".", 1)[-1]
        if isinstance(listing.func, ast.Attribute):
            last = listing.func.attr
        if last not in LISTING_CALLS:
            return
        if any(
            isinstance(node, ast.Name) and node.id in PRIVATE_ROOTS for node in ast.walk(listing)
        ):
            return
        deletes = any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in DELETE_CALLS
            for node in ast.walk(loop)
        )
        if not deletes:
            return
        patterns = [text_of(arg) for arg in (*listing.args, *(k.value for k in listing.keywords))]
        by_glob = any(text and ("*" in text or "?" in text) for text in patterns)
        by_prefix = any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"startswith", "fnmatch", "match"}
            for node in ast.walk(loop)
        ) or any(
            isinstance(node, ast.Call) and self.qualified(node.func).startswith("fnmatch.")
            for node in ast.walk(loop)
        )
        if by_glob or by_prefix:
            self._hit(loop, "TF109", f"deletes what `{ast.unparse(listing)}` lists by pattern")

    # -- TF103, TF107: shared state --------------------------------------------------------

    def _shared_container(self, node: ast.AST, scope: Scope, local: frozenset[str]) -> str | None:
        """The name of the module- or class-level mutable object ``node`` refers to."""
        if isinstance(node, ast.Name):
            if node.id in self.mutable_globals and node.id not in local:
                return node.id
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = node.value.id
            cls = scope.cls if owner in {"self", "cls"} else self.classes.get(owner)
            if cls is not None and node.attr in self._class_mutables(cls):
                return f"{cls.name}.{node.attr}"
        return None

    def _class_mutables(self, cls: ast.ClassDef) -> set[str]:
        names: set[str] = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and self.is_mutable(stmt.value):
                names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif (
                isinstance(stmt, ast.AnnAssign)
                and stmt.value is not None
                and self.is_mutable(stmt.value)
                and isinstance(stmt.target, ast.Name)
            ):
                names.add(stmt.target.id)
        return names

    def _class_attributes(self, cls: ast.ClassDef) -> set[str]:
        names: set[str] = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign):
                names.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                names.add(stmt.target.id)
        return names

    def _check_state(
        self, node: ast.AST, scope: Scope, local: frozenset[str], declared_global: set[str]
    ) -> None:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
        ):
            name = self._shared_container(node.func.value, scope, local)
            if name:
                self._hit(node, "TF103", f"`{name}.{node.func.attr}(...)`")
            return
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript):
                name = self._shared_container(target.value, scope, local)
                if name:
                    self._hit(target, "TF103", f"`{ast.unparse(target)}` changed")
            elif isinstance(target, ast.Name) and target.id in declared_global:
                self._hit(target, "TF103", f"module-level `{target.id}` rebound (`global`)")
            elif (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and not isinstance(node, ast.Delete)
            ):
                owner = target.value.id
                cls = scope.cls if owner == "cls" else self.classes.get(owner)
                if (
                    owner not in local - {"cls"}
                    and cls is not None
                    and (target.attr in self._class_attributes(cls))
                ):
                    self._hit(target, "TF103", f"class attribute `{cls.name}.{target.attr}` set")

    @staticmethod
    def _restored_lines(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
        """Lines that run at teardown: after a fixture's ``yield``, or in a ``finally``."""
        lines: set[int] = set()
        yields = [
            node.lineno
            for node in walk_shallow(func)
            if isinstance(node, ast.Yield | ast.YieldFrom)
        ]
        if yields:
            first = min(yields)
            end = func.end_lineno or first
            lines.update(range(first + 1, end + 1))
        for node in ast.walk(func):
            if isinstance(node, ast.Try) and node.finalbody:
                for stmt in node.finalbody:
                    lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
        return lines

    def _settings_target(self, target: ast.AST, local: frozenset[str]) -> str | None:
        """``settings.debug`` when ``settings`` was imported (not a local object)."""
        name = dotted(target)
        if name is None or "." not in name:
            return None
        root = name.split(".")[0]
        if root in local or root not in self.imported:
            return None
        return name

    def _env_target(self, node: ast.AST) -> bool:
        return self.qualified(node) == "os.environ"

    def _check_settings(self, node: ast.AST, local: frozenset[str]) -> None:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript) and self._env_target(target.value):
                self._report_mutation(node, "os.environ", f"`{ast.unparse(target)}` set")
            elif isinstance(target, ast.Attribute):
                name = self._settings_target(target, local)
                if name:
                    self._report_mutation(node, name, f"`{name}` set")

    def _check_env_call(self, call: ast.Call) -> None:
        name = self.qualified(call.func)
        if name in {"os.putenv", "os.unsetenv"} or (
            isinstance(call.func, ast.Attribute)
            and call.func.attr in {"update", "pop", "setdefault", "clear", "popitem"}
            and self._env_target(call.func.value)
        ):
            self._report_mutation(call, "os.environ", f"`{ast.unparse(call.func)}(...)`")
        elif name == "setattr" and len(call.args) >= 2:
            owner = dotted(call.args[0])
            if owner and owner.split(".")[0] in self.imported:
                self._report_mutation(call, owner, f"`setattr({owner}, ...)`")

    def _report_mutation(self, node: ast.AST, key: str, detail: str) -> None:
        self._mutations.append((node, key, detail))

    # -- TF104: fixtures ------------------------------------------------------------------

    def _check_fixture_value(self, scope: Scope) -> None:
        func = scope.node
        bound = {
            target.id: stmt.value
            for stmt in walk_shallow(func)
            if isinstance(stmt, ast.Assign)
            for target in stmt.targets
            if isinstance(target, ast.Name)
        }
        for node in walk_shallow(func):
            value: ast.AST | None = None
            if isinstance(node, ast.Return | ast.Yield):
                value = node.value
            if value is None:
                continue
            if isinstance(value, ast.Name) and value.id in bound:
                value = bound[value.id]
            if self.is_mutable(value):
                shown = ast.unparse(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                self._hit(
                    node, "TF104", f"`{func.name}` (scope {scope.fixture_scope!r}) gives `{shown}`"
                )

    # -- TF108: sleep ---------------------------------------------------------------------

    def _check_sleep(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # A sleep inside a loop polls for a condition; one on its own waits a fixed time.
        def visit(node: ast.AST, in_loop: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    continue
                if isinstance(child, ast.Call) and not in_loop:
                    name = self.qualified(child.func)
                    if name in {"time.sleep", "asyncio.sleep"}:
                        self._hit(child, "TF108", f"`{ast.unparse(child)}` outside a polling loop")
                visit(child, in_loop or isinstance(child, ast.While | ast.For | ast.AsyncFor))

        visit(func, False)

    # -- TF110: reading what others wrote ---------------------------------------------------

    def _check_unseeded_read(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, params: set[str]
    ) -> None:
        if not params or not params <= CONNECTION_FIXTURES:
            return
        first_read: ast.AST | None = None
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            query = self.query_of(node)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if query is not None:
                if QUERY_WRITE.search(query):
                    return
                if QUERY_READ.match(query) and first_read is None:
                    first_read = node
            elif method in DATA_READ_METHODS and first_read is None:
                first_read = node
            elif DATA_WRITE_METHODS.match(method) or method in QUERY_CALLS:
                # A write, or a query we cannot read: assume the test made its own data.
                return
        if first_read is not None:
            self._hit(first_read, "TF110", f"`{func.name}` only reads through its connection")

    def _path_key(self, node: ast.AST) -> str | None:
        """A path expression made only of literals and module-level names, as text."""
        # Path(X) and X name the same file.
        while (
            isinstance(node, ast.Call)
            and self.qualified(node.func) in READ_PATH_CALLS
            and len(node.args) == 1
        ):
            node = node.args[0]
        for part in ast.walk(node):
            if isinstance(part, ast.Name) and part.id not in self.module_names | set(self.aliases):
                return None
        if not any(isinstance(part, ast.Name | ast.Constant) for part in ast.walk(node)):
            return None
        return ast.unparse(node)

    def _file_accesses(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> Iterator[tuple[str, str, ast.AST]]:
        """(``read`` or ``write``, path key, node) for each file access with a fixed path."""
        params = {arg.arg for arg in func.args.args}
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            name = self.qualified(node.func)
            target: ast.AST | None = None
            kind = ""
            if name in {"open", "io.open"} and node.args:
                target, kind = node.args[0], "write" if self._write_mode(node, 1) else "read"
            elif isinstance(node.func, ast.Attribute) and node.func.attr in PATH_WRITE_METHODS:
                target, kind = node.func.value, "write"
            elif isinstance(node.func, ast.Attribute) and node.func.attr in PATH_READ_METHODS:
                target, kind = node.func.value, "read"
            if target is None:
                continue
            if any(isinstance(p, ast.Name) and p.id in params for p in ast.walk(target)):
                continue
            key = self._path_key(target)
            if key is not None:
                yield kind, key, node

    def _check_shared_files(self) -> None:
        tests = [scope.node for scope in self.scopes if scope.kind == "test"]
        accesses = {func.name: list(self._file_accesses(func)) for func in tests}
        written_by: dict[str, set[str]] = {}
        for name, found in accesses.items():
            for kind, key, _ in found:
                if kind == "write":
                    written_by.setdefault(key, set()).add(name)
        for name, found in accesses.items():
            own = {key for kind, key, _ in found if kind == "write"}
            reported: set[str] = set()
            for kind, key, node in found:
                others = written_by.get(key, set()) - {name}
                if kind == "read" and key not in own and others and key not in reported:
                    reported.add(key)
                    writers = ", ".join(f"`{other}`" for other in sorted(others))
                    self._hit(node, "TF110", f"reads `{key}`, which {writers} writes")


def audit_module(tree: ast.Module) -> list[Hit]:
    """The rules' hits in one module, sorted by line and rule."""
    hits = ModuleAudit(tree).run()
    return sorted(set(hits), key=lambda hit: (hit.line, hit.rule, hit.detail))


def rule_ids(items: Iterable[str]) -> list[str]:
    """The known rule ids among ``items``."""
    return [item for item in items if item in RULES]
