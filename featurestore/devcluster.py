"""A Spark standalone cluster (one Master, one Worker) on 127.0.0.1, for job tests.

Started through the venv's ``spark-class``; each daemon runs in its own JVM and logs into the
work folder. :meth:`StandaloneCluster.start` waits until the Worker has registered with the
Master and raises :class:`~featurestore.errors.ServiceError` with the log tail otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from featurestore.devdb import free_port
from featurestore.errors import ServiceError


def _spark_class() -> str:
    candidate = Path(sys.executable).parent / "spark-class"
    found = str(candidate) if candidate.is_file() else shutil.which("spark-class")
    if not found:
        raise ServiceError("spark-class not found next to the Python interpreter; run ./bootstrap.sh")
    return found


class StandaloneCluster:
    """One Master and one Worker bound to 127.0.0.1."""

    def __init__(self, work_dir: str | os.PathLike[str], worker_cores: int = 2,
                 worker_memory: str = "2g") -> None:
        self.work_dir = Path(work_dir)
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.master_port = free_port()
        self.master_ui_port = free_port()
        self.worker_ui_port = free_port()
        self._procs: list[subprocess.Popen] = []

    @property
    def master_url(self) -> str:
        """``spark://127.0.0.1:<port>``."""
        return f"spark://127.0.0.1:{self.master_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        env["SPARK_LOG_DIR"] = str(self.work_dir / "logs")
        env["PYSPARK_PYTHON"] = sys.executable
        return env

    def _launch(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.work_dir / f"{name}.log", "wb")  # noqa: SIM115 - kept open for the daemon's life
        proc = subprocess.Popen([_spark_class(), *args], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=self._env(), start_new_session=True)
        self._procs.append(proc)
        return proc

    def _status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.master_ui_port}/json/", timeout=2) as resp:
            return json.loads(resp.read())

    def _log_tail(self, name: str) -> str:
        path = self.work_dir / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        return " | ".join(lines[-8:])

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        """Start Master and Worker; return when the Worker is ALIVE in the Master's view."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        master = self._launch(
            "master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
            "--port", str(self.master_port), "--webui-port", str(self.master_ui_port),
        )
        worker = self._launch(
            "worker", "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
            "--cores", str(self.worker_cores), "--memory", self.worker_memory,
            "--webui-port", str(self.worker_ui_port), "--work-dir", str(self.work_dir / "work"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in (("master", master), ("worker", worker)):
                if proc.poll() is not None:
                    self.stop()
                    raise ServiceError(f"Spark {name} exited with code {proc.returncode}: {self._log_tail(name)}")
            try:
                status = self._status()
                if status.get("aliveworkers", 0) >= 1:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServiceError(
            f"Spark standalone cluster not ready within {timeout:.0f}s; master: {self._log_tail('master')}; "
            f"worker: {self._log_tail('worker')}"
        )

    def stop(self) -> None:
        """Stop Worker then Master (SIGTERM, then SIGKILL after 20 s)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
