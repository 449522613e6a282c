"""The tests' side of the reference JVM (reference/sidecar.py): Apache Hudi 1.2's own writer and
reader, and Deequ, on Spark 3.5 in a process of its own, spoken to in JSON lines."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv-reference" / "bin" / "python"
SIDECAR = REPO / "reference" / "sidecar.py"


class ReferenceError_(RuntimeError):  # noqa: N801 - the reference JVM's own errors, not ours
    """An operation failed inside the reference JVM (its message and trace)."""


def encode(value: Any) -> Any:
    """A Python value as the sidecar's tagged JSON."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return {"$ts": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": str(value)}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The sidecar's tagged JSON as Python (naive UTC datetimes)."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("$"):
        (tag, text), = value.items()
        return {"$ts": dt.datetime.fromisoformat, "$date": dt.date.fromisoformat, "$dec": decimal.Decimal,
                "$b64": base64.b64decode, "$float": float}[tag](text)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


class ReferenceJVM:
    """One sidecar process for the whole test run."""

    def __init__(self, log_path: Path, timeout: float = 600.0) -> None:
        if not PYTHON.is_file():
            raise RuntimeError(f"{PYTHON} is missing: run ./bootstrap.sh (reference/setup.sh makes it)")
        self.timeout = timeout
        self.log = open(log_path, "w")  # noqa: SIM115 - open for the life of the process
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": str(PYTHON)}
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([str(PYTHON), str(SIDECAR)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env, text=True, bufsize=1)
        ready = self._answer()
        self.spark_version = ready["ready"]

    def _answer(self) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the reference JVM did not answer in {self.timeout:.0f}s (log: {self.log.name})")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                continue
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the reference JVM exited ({self.proc.poll()}); see {self.log.name}")
            if not line.startswith("{"):
                continue  # the JVM's own warnings on stdout
            answer = json.loads(line)
            if "error" in answer:
                raise ReferenceError_(answer["error"] + "\n" + answer.get("trace", ""))
            return answer["ok"]

    def call(self, op: str, **request: Any) -> Any:
        """Run one operation; its answer (errors raise ReferenceError_)."""
        self.proc.stdin.write(json.dumps({"op": op, **encode(request)}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    # -- Apache Hudi -----------------------------------------------------------------------
    def hudi_write(self, path: str, schema: str, rows: list[tuple], record_key: str, operation: str,
                   precombine: str | None = None, partition_path: str = "", table_type: str = "COPY_ON_WRITE",
                   options: dict[str, Any] | None = None, table_name: str | None = None) -> list[str]:
        """Write with Apache Hudi's datasource; the instants the write completed (``table_name``: the
        table's ``hoodie.table.name``, default the folder's name)."""
        return self.call("hudi_write", path=path, schema=schema, rows=[list(r) for r in rows], record_key=record_key,
                         operation=operation, precombine=precombine, partition_path=partition_path,
                         table_type=table_type, table_name=table_name or Path(path).name,
                         options=options or {})["instants"]

    def hudi_read(self, path: str, columns: list[str], kind: str = "snapshot", instant: str | None = None,
                  begin: str | None = None, end: str | None = None) -> list[tuple]:
        """Rows as Apache Hudi reads them, as tuples of ``columns``."""
        got = self.call("hudi_read", path=path, columns=columns, kind=kind, instant=instant, begin=begin, end=end)
        return [tuple(decode(r)) for r in got["rows"]]

    def hudi_timeline(self, path: str) -> dict[str, Any]:
        """Completed instants and the table version, as Apache Hudi sees them."""
        return self.call("hudi_timeline", path=path)

    def hudi_bloom(self, keys: list[str] | None = None, num_entries: int = 60_000, fpp: float = 0.000000001,
                   max_entries: int = 100_000, type_code: str = "DYNAMIC_V0", serialized: str | None = None,
                   parquet: str | None = None, probe: list[str] | None = None) -> dict[str, Any]:
        """Apache Hudi's own bloom filter: built from ``keys`` with the given settings, read back from
        ``serialized``, or read from the footer of the base file ``parquet`` as Hudi's index reads it;
        ``{"type_code", "serialized", "contains"}`` (``contains``: ``mightContain`` of each ``probe``
        key; type code and string None when the file has no filter)."""
        return self.call("hudi_bloom", keys=keys, num_entries=num_entries, fpp=fpp, max_entries=max_entries,
                         type_code=type_code, serialized=serialized, parquet=parquet, probe=probe or [])

    # -- Deequ -----------------------------------------------------------------------------
    def deequ_metrics(self, schema: str, rows: list[list[Any]], analyzers: list[list[Any]]) -> list[list[dict]]:
        """Deequ's metrics of each analyzer ``[name, args, kwargs]`` (pydeequ's names) on the rows: per
        analyzer the list of ``{entity, instance, name, value}`` it produced (empty: no value)."""
        got = self.call("deequ_metrics", schema=schema, rows=rows, analyzers=analyzers)
        return [[decode(m) for m in v["metrics"]] for v in got["values"]]

    def deequ_anomalies(self, strategy: dict[str, Any], cases: list[tuple[list[float], int, int]]) -> list[list[int]]:
        """Per case ``(series, start, end)``: the indices Deequ's anomaly strategy flags in ``[start, end)``
        (``strategy``: ``{"name": "OnlineNormal", "params": {Deequ's parameter names}}``)."""
        return self.call("deequ_anomalies", strategy=strategy, cases=[list(c) for c in cases])["anomalies"]

    def deequ_suggestions(self, schema: str, rows: list[list[Any]]) -> list[tuple[str, str]]:
        """Deequ's suggested constraints (default rules) on the rows: ``(column, code)`` pairs."""
        return [tuple(s) for s in self.call("deequ_suggestions", schema=schema, rows=rows)["suggestions"]]

    def close(self) -> None:
        """Stop the sidecar."""
        if self.proc.poll() is None:
            try:
                self.call("quit")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
