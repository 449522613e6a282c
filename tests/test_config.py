"""Configuration: defaults, file, environment and override precedence; bad keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from featurestore.config import DEFAULTS, load_config, redact_url
from featurestore.errors import ConfigError

REPO_CONF = Path(__file__).resolve().parent.parent / "conf" / "featurestore.yaml"


@pytest.fixture
def in_empty_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEATURESTORE_CONFIG", raising=False)
    return tmp_path


def test_documented_defaults_file_equals_builtin_defaults():
    assert yaml.safe_load(REPO_CONF.read_text()) == DEFAULTS


def test_no_file_anywhere_gives_defaults_under_cwd(in_empty_dir):
    cfg = load_config(environ={})
    assert cfg.source is None
    assert cfg.warehouse == in_empty_dir / "warehouse"
    assert cfg.registry_url == f"sqlite:///{in_empty_dir / 'warehouse' / 'registry.db'}"
    assert cfg.online_url == f"sqlite:///{in_empty_dir / 'warehouse' / 'online.db'}"
    assert cfg.get("spark.master") == "local[*]"


def test_precedence_defaults_file_env_override(in_empty_dir):
    f = in_empty_dir / "my.yaml"
    f.write_text("spark:\n  master: local[1]\n  shuffle_partitions: 3\nonline:\n  batch_size: 10\n")
    env = {"FEATURESTORE_SPARK_SHUFFLE_PARTITIONS": "5", "FEATURESTORE_SPARK_UI": "true"}
    cfg = load_config(f, overrides={"online.batch_size": 7}, environ=env)
    assert cfg.source == f
    assert cfg.get("spark.master") == "local[1]"  # file beats default
    assert cfg.get("spark.shuffle_partitions") == 5  # env beats file, coerced to int
    assert cfg.get("spark.ui") is True
    assert cfg.get("online.batch_size") == 7  # override beats file
    assert cfg.get("online.max_connections") == 4  # untouched default


def test_file_found_through_env_and_in_cwd(in_empty_dir, monkeypatch):
    (in_empty_dir / "featurestore.yaml").write_text("warehouse: /data/wh\n")
    assert load_config(environ={}).warehouse == Path("/data/wh")
    other = in_empty_dir / "other.yaml"
    other.write_text("warehouse: /data/other\n")
    monkeypatch.setenv("FEATURESTORE_CONFIG", str(other))
    assert load_config(environ={}).warehouse == Path("/data/other")


def test_misspelt_key_names_key_and_file(in_empty_dir):
    f = in_empty_dir / "bad.yaml"
    f.write_text("spark:\n  mastr: local[1]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'spark\.mastr'"):
        load_config(f, environ={})


def test_unknown_section_and_wrong_type(in_empty_dir):
    f = in_empty_dir / "bad.yaml"
    f.write_text("sparkk:\n  master: x\n")
    with pytest.raises(ConfigError, match="unknown key 'sparkk'"):
        load_config(f, environ={})
    f.write_text("online:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'online\.batch_size' must be int"):
        load_config(f, environ={})
    f.write_text("spark:\n  shuffle_partitions: true\n")
    with pytest.raises(ConfigError, match="shuffle_partitions"):
        load_config(f, environ={})


def test_bad_environment_variables(in_empty_dir):
    with pytest.raises(ConfigError, match="FEATURESTORE_SPARK_MASTR"):
        load_config(environ={"FEATURESTORE_SPARK_MASTR": "x"})
    with pytest.raises(ConfigError, match="FEATURESTORE_ONLINE_BATCH_SIZE.*not an integer"):
        load_config(environ={"FEATURESTORE_ONLINE_BATCH_SIZE": "many"})


def test_missing_explicit_file_is_an_error(in_empty_dir):
    with pytest.raises(ConfigError, match="not found"):
        load_config(in_empty_dir / "nope.yaml", environ={})


def test_secrets_are_redacted(in_empty_dir):
    cfg = load_config(environ={"FEATURESTORE_ONLINE_PASSWORD": "s3cret",
                               "FEATURESTORE_REGISTRY_URL": "mysql+mysqlconnector://u:pw@h:1/db"})
    shown = str(cfg.redacted())
    assert "s3cret" not in shown and ":pw@" not in shown
    assert cfg.get("online.password") == "s3cret"
    assert redact_url("mysql://u:p@h/db") == "mysql://u:***@h/db"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
