"""Checks of ports, names, queries and cleanups: TF105, TF106, TF109, TF110"""

from __future__ import annotations

import ast

from testfleet.diagnose.audit.core import AuditBase
from testfleet.diagnose.audit.vocabulary import (
    CONNECT_CALLS,
    CONNECTION_FIXTURES,
    DATA_READ_METHODS,
    DATA_WRITE_METHODS,
    DB_CALLS,
    DB_KEYWORDS,
    DELETE_CALLS,
    LISTING_CALLS,
    PRIVATE_ROOTS,
    QUERY_CALLS,
    QUERY_DB_NAME,
    QUERY_DELETE,
    QUERY_DELETE_ALL,
    QUERY_PATTERN_DELETE,
    QUERY_READ,
    QUERY_WRITE,
    SOCKET_CALLS,
    URL_WITH_PORT,
    is_port,
    text_of,
)


class DataChecks(AuditBase):
    """Checks of ports, names, queries and cleanups."""

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
