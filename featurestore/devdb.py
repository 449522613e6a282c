"""A throwaway local MariaDB server for development, tests, benchmarks and the quick start.

``DevDatabase(base_dir).start()`` initialises a private data directory (first time only), starts
``mariadbd`` bound to 127.0.0.1 on its own port with its own socket, and creates a real non-root
user with a random password and a database. Its state (port, user, passwords, pid) is kept in
``<base_dir>/state.json`` (mode 0600) so that ``featurestore dev-db start|stop|url|status`` can
be used across shell commands. Nothing here ever logs a password.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from featurestore.errors import ServiceError

DEFAULT_USER = "featurestore"
DEFAULT_DATABASE = "featurestore"


def default_dir() -> Path:
    """``$FEATURESTORE_DEV_DB_DIR`` or ``./.dev-db``."""
    return Path(os.environ.get("FEATURESTORE_DEV_DB_DIR", ".dev-db")).resolve()


def _find_binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or next(
            (str(p) for d in ("/usr/sbin", "/usr/bin") if (p := Path(d) / name).is_file()), None
        )
        if found:
            return found
    raise ServiceError(
        f"MariaDB is not installed: none of {', '.join(names)} found. "
        "Run the set-up command (./bootstrap.sh) or apt-get install mariadb-server."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DevDbState:
    """What a started dev database needs to be reached and stopped again."""

    port: int
    user: str
    password: str
    root_password: str
    database: str
    pid: int | None = None


class DevDatabase:
    """A MariaDB server in a private folder, listening on 127.0.0.1 only."""

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, port: int | None = None,
                 user: str = DEFAULT_USER, database: str = DEFAULT_DATABASE, buffer_pool: str = "128M") -> None:
        """``buffer_pool``: InnoDB's buffer pool (``128M``, ``2G``): an online store serves from memory when
        its tables fit."""
        self.base_dir = Path(base_dir).resolve() if base_dir else default_dir()
        self.datadir = self.base_dir / "data"
        self.socket = self.base_dir / "mysqld.sock"
        self.state_file = self.base_dir / "state.json"
        self.log_file = self.base_dir / "mariadbd.log"
        self._port = port
        self._user = user
        self._database = database
        self._buffer_pool = buffer_pool

    # -- state -----------------------------------------------------------------------------
    def state(self) -> DevDbState | None:
        """The saved state, or None if this folder never held a started server."""
        if not self.state_file.is_file():
            return None
        return DevDbState(**json.loads(self.state_file.read_text()))

    def _save(self, state: DevDbState) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(state), fh)
        os.replace(tmp, self.state_file)

    def is_running(self) -> bool:
        """Whether the server process recorded in the state is alive."""
        st = self.state()
        if st is None or st.pid is None:
            return False
        try:
            os.kill(st.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def url(self, driver: str = "mysql+mysqlconnector", include_password: bool = True) -> str:
        """SQLAlchemy URL for the non-root user (``driver`` ``mysql`` gives a plain URL)."""
        st = self._require_state()
        secret = st.password if include_password else "***"
        return f"{driver}://{st.user}:{secret}@127.0.0.1:{st.port}/{st.database}"

    def jdbc_url(self) -> str:
        """JDBC URL (without credentials) for Spark's JDBC data source."""
        st = self._require_state()
        return f"jdbc:mysql://127.0.0.1:{st.port}/{st.database}?permitMysqlScheme"

    def _require_state(self) -> DevDbState:
        st = self.state()
        if st is None:
            raise ServiceError(f"no dev database in {self.base_dir}: run 'featurestore dev-db start' first")
        return st

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> DevDbState:
        """Start the server (initialising the data directory the first time); idempotent."""
        if self.is_running():
            return self._require_state()
        mariadbd = _find_binary("mariadbd", "mysqld")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o700)
        previous = self.state()
        fresh = not (self.datadir / "mysql").is_dir()
        if fresh:
            self._install_datadir()
        port = self._port or (previous.port if previous and _port_free(previous.port) else free_port())
        state = previous or DevDbState(
            port=port, user=self._user, password=secrets.token_urlsafe(18),
            root_password=secrets.token_urlsafe(18), database=self._database,
        )
        state.port = port
        args = [
            mariadbd, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
            f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
            f"--pid-file={self.base_dir / 'mariadbd.pid'}", f"--log-error={self.log_file}",
            f"--innodb-buffer-pool-size={self._buffer_pool}", "--max-connections=200",
            # point lookups (serving) go through the adaptive hash index instead of a B-tree descent
            "--innodb-adaptive-hash-index=ON",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        state.pid = proc.pid
        self._save(state)
        self._wait_ready(proc, timeout)
        self._provision(state)
        return state

    def _install_datadir(self) -> None:
        install = _find_binary("mariadb-install-db", "mysql_install_db")
        args = [install, "--no-defaults", f"--datadir={self.datadir}", "--skip-test-db",
                "--auth-root-authentication-method=normal"]
        if os.geteuid() == 0:
            args.append("--user=root")
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServiceError(f"mariadb-install-db failed (exit {done.returncode}): {done.stderr[-2000:]}")

    def _wait_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceError(f"mariadbd exited with code {proc.returncode}: {self._log_tail()}")
            if self.socket.exists():
                try:
                    self._root_connection(password=None, quiet=True).close()
                    return
                except Exception:  # noqa: BLE001 - server still starting: any error means retry
                    pass
                try:
                    self._root_connection(quiet=True).close()
                    return
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(0.2)
        proc.kill()
        raise ServiceError(f"mariadbd did not accept connections within {timeout:.0f}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        if not self.log_file.is_file():
            return "(no log)"
        return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-6:])

    def _root_connection(self, password: str | None | bool = True, quiet: bool = False):
        import mysql.connector

        if password is True:
            password = self._require_state().root_password
        return mysql.connector.connect(
            unix_socket=str(self.socket), user="root", password=password or "", connection_timeout=5,
        )

    def admin_connection(self):
        """A root connection over the private socket (for tests that create extra users)."""
        return self._root_connection()

    def _provision(self, state: DevDbState) -> None:
        try:
            conn = self._root_connection()
            set_root_password = False
        except Exception:  # noqa: BLE001 - a newly initialised datadir: root has no password yet
            conn = self._root_connection(password=None)
            set_root_password = True
        try:
            cur = conn.cursor()
            # Identifiers cannot be bound parameters; these come from our own constants.
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{state.database}`")
            cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (state.user, "%", state.password))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO `{state.user}`@'%'")
            if set_root_password:
                cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (state.root_password,))
            cur.execute("FLUSH PRIVILEGES")
            conn.commit()
        finally:
            conn.close()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server; True if one was running."""
        st = self.state()
        if st is None or not self.is_running():
            return False
        assert st.pid is not None
        os.kill(st.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(st.pid, 0)
            except ProcessLookupError:
                break
            _reap(st.pid)
            time.sleep(0.2)
        else:
            os.kill(st.pid, signal.SIGKILL)
        _reap(st.pid)
        st.pid = None
        self._save(st)
        return True

    def destroy(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
