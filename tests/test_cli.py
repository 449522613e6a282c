"""Every way the ``featurestore`` command fails, run as a person runs it (the console script in a process
of its own): one ``featurestore: error: ...`` line naming the cause, exit code 2 for a usage mistake and
1 for a failure at run time, a traceback only with ``--debug``, and no secret in what it prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = Path(sys.executable).parent / "featurestore"


def run_cli(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The console script with ``argv``; FEATURESTORE_* variables of the test run are not inherited."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    return subprocess.run([str(CONSOLE_SCRIPT), *argv], capture_output=True, text=True, timeout=300,
                          env={**base, **(env or {})}, cwd=cwd)


def assert_one_error_line(done: subprocess.CompletedProcess, exit_code: int, *fragments: str) -> str:
    """The run failed with ``exit_code`` and printed exactly one error line holding every fragment."""
    assert done.returncode == exit_code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("featurestore: error: "), lines
    assert "Traceback" not in done.stdout + done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def free_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(folder: Path, **values: object) -> Path:
    config = folder / "featurestore.yaml"
    config.write_text(yaml.safe_dump({"warehouse": str(folder / "warehouse"), **values}), encoding="utf-8")
    return config


def test_usage_mistakes_exit_2_with_one_line(tmp_path):
    config = write_config(tmp_path)
    assert_one_error_line(run_cli("--config", str(config), "no-such-command"), 2, "invalid choice: 'no-such-command'")
    assert_one_error_line(run_cli("--config", str(config), "feature-groups", "list", "--frobnicate"), 2,
                          "unrecognized arguments: --frobnicate")
    assert_one_error_line(run_cli("--config", str(config), "serve", "--port", "eighty"), 2,
                          "serve: argument --port: invalid int value: 'eighty'")
    assert_one_error_line(run_cli("--config", str(config), "feature-groups", "show"), 2,
                          "a feature group name is required")
    assert_one_error_line(run_cli("--config", str(config), "serve", "--workers", "0"), 2,
                          "--workers must be at least 1")


def test_a_bad_configuration_names_the_key(tmp_path):
    config = write_config(tmp_path, online={"batch_sise": 10})
    assert_one_error_line(run_cli("--config", str(config), "feature-groups", "list"), 1, "online.batch_sise")
    missing = tmp_path / "nowhere.yaml"
    assert_one_error_line(run_cli("--config", str(missing), "feature-groups", "list"), 1, str(missing))


def test_registry_unreachable_is_one_line_and_debug_shows_the_traceback(tmp_path):
    port = free_port()
    secret = "s3cret-Pa55word"
    config = write_config(tmp_path, registry={"url": f"mysql+mysqlconnector://fs:{secret}@127.0.0.1:{port}/fs"})
    line = assert_one_error_line(run_cli("--config", str(config), "feature-groups", "list"), 1,
                                 "registry database:", str(port))
    assert secret not in line
    debug = run_cli("--config", str(config), "feature-groups", "list", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line
    assert secret not in debug.stdout + debug.stderr


def test_wrong_registry_password_is_one_line_without_the_password(tmp_path, mariadb):
    state = mariadb.state()
    wrong = "not-" + state.password
    url = mariadb.url().replace(f":{state.password}@", f":{wrong}@")
    config = write_config(tmp_path, registry={"url": url})
    line = assert_one_error_line(run_cli("--config", str(config), "feature-groups", "list"), 1,
                                 "registry database:", "Access denied", state.user)
    assert wrong not in line and state.password not in line
    # the password from the environment instead of the URL: the same answer
    config = write_config(tmp_path, registry={"url": mariadb.url(include_password=False).replace(":***", "")})
    done = run_cli("--config", str(config), "feature-groups", "list", env={"FEATURESTORE_REGISTRY_PASSWORD": wrong})
    assert wrong not in assert_one_error_line(done, 1, "Access denied")


def test_runtime_failures_name_what_is_missing(tmp_path):
    config = write_config(tmp_path)
    assert_one_error_line(run_cli("--config", str(config), "validate", "orders", str(tmp_path / "missing.parquet")),
                          1, "validate: input path", "missing.parquet", "does not exist")
    assert_one_error_line(run_cli("--config", str(config), "feature-groups", "show", "nope"), 1, "'nope'")
    assert_one_error_line(run_cli("--config", str(config), "commits", "nope", "--json"), 1, "'nope'")


def test_default_store_from_the_configuration_or_environment_and_empty_listings_say_where_to_look(tmp_path):
    from featurestore import FeatureStore
    from featurestore.config import load_config

    config = write_config(tmp_path)
    # two stores share the registry; feature groups are registered without Spark (the registry's own record)
    with FeatureStore(load_config(config, environ={}), "fraud") as fs:
        fs.registry.create_feature_group({"feature_store_id": fs.id, "name": "trans", "version": 1,
                                          "kind": "cached", "description": "", "primary_key": ["cc_num"],
                                          "partition_key": [], "online_enabled": False,
                                          "location": str(tmp_path / "warehouse" / "trans"), "features": [],
                                          "options": {}, "created_by": "test", "updated_by": "test"})
    with FeatureStore(load_config(config, environ={}), "empty_project"):
        pass
    default = run_cli("--config", str(config), "feature-groups", "list")
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == ("no feature groups in feature store 'default'; feature stores with feature "
                                      "groups: fraud (1) (choose one with --store or FEATURESTORE_STORE)")
    by_env = run_cli("--config", str(config), "feature-groups", "list", env={"FEATURESTORE_STORE": "fraud"})
    assert by_env.returncode == 0 and by_env.stdout.splitlines()[2].split()[:2] == ["trans", "1"], by_env.stdout
    config_store = write_config(tmp_path, store="fraud")
    assert "trans" in run_cli("--config", str(config_store), "feature-groups", "list").stdout
    # --store wins over both
    explicit = run_cli("--config", str(config_store), "feature-views", "list", "--store", "empty_project")
    assert explicit.stdout.strip().startswith("no feature views in feature store 'empty_project'; feature stores "
                                              "with feature groups: fraud (1)")
    assert_one_error_line(run_cli("--config", str(config), "feature-groups", "list", "--store", "bad name"), 1,
                          "feature store")


@pytest.mark.parametrize("argv", [["--json", "feature-groups", "list"], ["feature-groups", "list", "--json"]])
def test_json_before_or_after_the_subcommand(tmp_path, argv):
    config = write_config(tmp_path)
    done = run_cli("--config", str(config), *argv)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
