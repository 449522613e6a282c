"""One output interface for the CLI: human-readable text or JSON (``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


class Output:
    """Prints records, tables and messages either as text or as JSON."""

    def __init__(self, as_json: bool = False, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout

    def _emit(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def message(self, text: str, **data: Any) -> None:
        """A one-line message; in JSON mode an object ``{"message": text, **data}``."""
        if self.as_json:
            self._emit(json.dumps({"message": text, **data}, default=str))
        else:
            self._emit(text)

    def record(self, data: Mapping[str, Any]) -> None:
        """One object: ``key: value`` lines, or a JSON object."""
        if self.as_json:
            self._emit(json.dumps(data, default=str, indent=2))
            return
        width = max((len(str(k)) for k in data), default=0)
        for k, v in data.items():
            self._emit(f"{str(k).ljust(width)}  {v}")

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        """Rows as an aligned text table, or a JSON array."""
        if self.as_json:
            self._emit(json.dumps(list(rows), default=str, indent=2))
            return
        columns = list(columns or (rows[0].keys() if rows else []))
        if not columns:
            self._emit("(no rows)")
            return
        if self.stream.isatty():
            self._rich_table(rows, columns)
            return
        cells = [[str(r.get(c, "")) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        self._emit("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        self._emit("  ".join("-" * w for w in widths))
        for row in cells:
            self._emit("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        if not rows:
            self._emit("(no rows)")

    def _rich_table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
        """A table drawn by rich, for a terminal."""
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns, show_lines=False)
        for r in rows:
            table.add_row(*[str(r.get(c, "")) for c in columns])
        Console(file=self.stream).print(table)
        if not rows:
            self._emit("(no rows)")
