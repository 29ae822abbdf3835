"""The audit's vocabulary: the names, calls and patterns its rules recognise."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

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
#: The teardown methods of a class, and the setup methods whose changes they undo.
TEARDOWN_NAMES = {"teardown_method", "teardown_class", "tearDown", "tearDownClass"}
SETUP_ONLY_NAMES = {"setup_method", "setup_class", "setUp", "setUpClass"}
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
#: Calls that name the machine's temp directory: a fixed name in it is shared.
SHARED_TEMP_CALLS = {"tempfile.gettempdir", "tempfile.gettempdirb"}
#: Calls that give the home directory, as shared by every test and run as the temp dir.
SHARED_HOME_CALLS = {"pathlib.Path.home"}
#: Context managers in whose block the working directory is the test's own.
ISOLATING_METHODS = {"isolated_filesystem", "as_cwd"}
ISOLATING_CALLS = {"contextlib.chdir"}
#: Context managers that put back, at the end of their block, what is changed in it.
RESTORING_METHODS = {"isolation", "isolated_filesystem"}
#: A sleep in a block holding one of these keeps others out: work, not a wait.
LOCK_WORDS = ("lock", "mutex", "semaphore")
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


#: The words of a name: snake_case parts and camelCase humps.
_NAME_WORDS = re.compile(r"_+|(?<=[a-z0-9])(?=[A-Z])")


def names_a_port(name: str) -> bool:
    """``PORT``, ``db_port``, ``serverPort``: a word of the name is port, not ``IMPORTS``."""
    return any(word.lower() in ("port", "ports") for word in _NAME_WORDS.split(name))


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
