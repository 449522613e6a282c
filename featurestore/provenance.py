"""Code provenance: what produced a commit or a training dataset.

``capture()`` describes the running program: the job script (path, SHA-256, content) or the
notebook (its .ipynb, located through ``$JPY_SESSION_NAME`` as Jupyter sets it for kernels, or
``$FEATURESTORE_NOTEBOOK``), else an interactive session; the git commit of the working copy the
code lives in (and whether it had uncommitted changes); user, host, Python and the installed
package versions. The content is stored once per hash in the registry; each commit points at it
through its Hudi commit metadata (``featurestore.code.sha256``) and a registry row.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import __main__

MAX_CONTENT_BYTES = 16 * 1024 * 1024  # a notebook with large outputs is still stored; beyond this only the hash


def _git(folder: Path) -> tuple[str | None, bool | None]:
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None, None
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


@functools.lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """``name==version`` of every installed distribution, sorted (what ``pip freeze`` lists)."""
    seen = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            seen[name.lower()] = f"{name}=={dist.version}"
    return tuple(sorted(seen.values(), key=str.lower))


def _source() -> tuple[str, Path | None]:
    notebook = os.environ.get("FEATURESTORE_NOTEBOOK") or os.environ.get("JPY_SESSION_NAME")
    if notebook and notebook.endswith(".ipynb") and Path(notebook).is_file():
        return "notebook", Path(notebook).resolve()
    main_file = getattr(__main__, "__file__", None)
    if main_file and Path(main_file).is_file():
        path = Path(main_file).resolve()
        # pytest, the CLI or a REPL launcher are not "the code that produced the data"
        if path.suffix == ".py" and "site-packages" not in path.parts:
            return "script", path
    return "interactive", None


def capture() -> dict[str, Any]:
    """Provenance of the running program (see the module docstring); ``content`` is bytes or None."""
    kind, path = _source()
    content: bytes | None = None
    digest = None
    git_commit, git_dirty = None, None
    if path is not None:
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        content = raw if len(raw) <= MAX_CONTENT_BYTES else None
        git_commit, git_dirty = _git(path.parent)
    else:
        git_commit, git_dirty = _git(Path.cwd())
    return {
        "kind": kind, "path": str(path) if path else None, "sha256": digest, "content": content,
        "git_commit": git_commit, "git_dirty": git_dirty, "user": getpass.getuser(), "host": socket.gethostname(),
        "python": platform.python_version(), "argv": list(sys.argv),
        "packages": list(installed_packages()), "captured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def commit_metadata(prov: dict[str, Any]) -> dict[str, str]:
    """The commit-metadata entries of a provenance (``code.kind``, ``user``, ...; the native Hudi engine
    stores them as ``featurestore.commit.metadata.*``)."""
    out = {"code.kind": prov["kind"], "user": prov["user"], "host": prov["host"]}
    if prov["sha256"]:
        out["code.sha256"] = prov["sha256"]
    if prov["path"]:
        out["code.path"] = prov["path"]
    if prov["git_commit"]:
        out["code.git_commit"] = prov["git_commit"]
    return out


def record(registry: Any, prov: dict[str, Any], entity_type: str, feature_group_id: int | None = None,
           commit_id: str | None = None, entity_id: int | None = None) -> int:
    """Store ``prov`` for a commit (``entity_type="commit"``) or a training dataset; content once per hash."""
    row = {"entity_type": entity_type, "feature_group_id": feature_group_id, "commit_id": commit_id,
           "entity_id": entity_id,
           **{k: prov[k] for k in ("kind", "path", "sha256", "git_commit", "git_dirty", "user", "host", "python",
                                   "argv", "packages")},
           "captured_at": dt.datetime.fromisoformat(prov["captured_at"]).replace(tzinfo=None)}
    return registry.add_provenance(row, prov["content"])


def load(registry: Any, entity_type: str, feature_group_id: int | None = None, commit_id: str | None = None,
         entity_id: int | None = None) -> dict[str, Any] | None:
    """The newest stored provenance of an entity, with ``content`` (bytes) when stored, or None."""
    rows = registry.get_provenance(entity_type, feature_group_id, commit_id, entity_id)
    if not rows:
        return None
    row = rows[0]
    content = registry.get_code(row["sha256"]) if row["sha256"] else None
    return {**{k: v for k, v in row.items() if k not in ("id", "entity_type", "entity_id")}, "content": content}
