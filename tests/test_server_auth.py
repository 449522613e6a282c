"""API keys and TLS of the HTTP feature server: no key, a wrong key, a key of another store and a
right key, through a real server process; keys never appear in its output; no open bind beyond
loopback without keys."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.errors import ConfigError
from featurestore.server.auth import ApiKey, Authenticator, api_keys_from_config, is_loopback, key_digest

CLI = str(Path(sys.executable).with_name("featurestore"))
WEB_KEY = "fsk_web-team-key-0123456789abcdef"
OTHER_KEY = "fsk_other-store-key-0123456789abcd"
GLOBAL_KEY = "fsk_global-environment-key-01234567"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_decisions_for_each_kind_of_request():
    auth = Authenticator([ApiKey("web", key_digest(WEB_KEY), ("web",)), ApiKey("any", key_digest(GLOBAL_KEY))])
    assert auth.check(None, "web").status == 401
    assert auth.check("Basic dXNlcjpwYXNz", "web").status == 401
    assert auth.check("Bearer ", "web").status == 401
    assert auth.check("Bearer " + WEB_KEY + "x", "web").status == 401
    denied = auth.check("Bearer " + WEB_KEY, "fraud")
    assert (denied.status, denied.key_name) == (403, "web") and WEB_KEY not in denied.reason
    assert auth.check("bearer " + WEB_KEY, "web").status == 200
    assert auth.check("Bearer " + GLOBAL_KEY, "fraud").status == 200
    assert Authenticator([]).check(None, "web").status == 200  # no keys configured: open (loopback only)


@pytest.mark.parametrize(("entry", "named"), [
    ("not a mapping", r"server.api_keys\[0\] must be a mapping"),
    ({"name": "x", "sha256": "abc"}, r"server.api_keys\[0\].sha256 \(x\) must be the 64 hex digits"),
    ({"sha256": "0" * 64}, r"server.api_keys\[0\].name must be a non-empty string"),
    ({"name": "x", "sha256": "0" * 64, "stores": "web"}, r"server.api_keys\[0\].stores \(x\) must be a list"),
    ({"name": "x", "sha256": "0" * 64, "key": "plain"}, r"server.api_keys\[0\]: unknown key\(s\) key"),
])
def test_malformed_key_entries_are_named(entry, named):
    config = load_config(environ={}, overrides={"server.api_keys": [entry]})
    with pytest.raises(ConfigError, match=named):
        api_keys_from_config(config)


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("example.org")  # noqa: S104


def _request(url: str, key: str | None, context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    body = json.dumps({"feature_group": "profiles", "entries": [{"uid": 1}]}).encode()
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_healthy(base: str, proc: subprocess.Popen, context: ssl.SSLContext | None = None) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/health", timeout=5, context=context) as resp:
                assert json.loads(resp.read())["status"] == "ok"
                return
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            time.sleep(0.1)
    raise AssertionError("the server did not become healthy")


@pytest.fixture
def keyed_store(spark, tmp_path):
    config = tmp_path / "fs.yaml"
    config.write_text(
        f"warehouse: {tmp_path / 'warehouse'}\n"
        "server:\n  api_keys:\n"
        f"    - {{name: web-team, sha256: {key_digest(WEB_KEY)}, stores: [web]}}\n"
        f"    - {{name: other-team, sha256: {key_digest(OTHER_KEY)}, stores: [other]}}\n")
    fs = FeatureStore(load_config(config, environ={}), "web", spark=spark)
    fg = fs.create_feature_group("profiles", primary_key="uid", online_enabled=True)
    fg.insert(spark.createDataFrame([(1, "Zoé")], "uid int, name string"))
    yield config
    fs.close()


def _cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_keys_and_tls_through_a_real_server(keyed_store, tmp_path):
    cert, key = _cert(tmp_path)
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")},
           "FEATURESTORE_SERVER_API_KEY": GLOBAL_KEY}
    proc = subprocess.Popen([CLI, "--config", str(keyed_store), "serve", "--port", str(port), "--store", "web",
                             "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    context = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, context)  # /health needs no key
        url = base + "/feature-vectors"
        status, body = _request(url, None, context)
        assert status == 401 and "Authorization: Bearer" in body["error"]
        assert _request(url, "fsk_not-a-key-at-all-000000000000", context)[0] == 401
        status, body = _request(url, OTHER_KEY, context)
        assert status == 403 and "other-team" in body["error"] and OTHER_KEY not in body["error"]
        assert _request(url, WEB_KEY, context) == (200, {"vectors": [{"uid": 1, "name": "Zoé"}]})
        assert _request(url, GLOBAL_KEY, context)[0] == 200
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    printed = (out + err).decode()
    for secret in (WEB_KEY, OTHER_KEY, GLOBAL_KEY, key_digest(WEB_KEY)):
        assert secret not in printed
    assert f"https://127.0.0.1:{port}" in printed


def test_no_open_bind_beyond_loopback_without_keys(spark, tmp_path):
    config = tmp_path / "open.yaml"
    config.write_text(f"warehouse: {tmp_path / 'warehouse'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    refused = subprocess.run([CLI, "--config", str(config), "serve", "--host", "0.0.0.0"],  # noqa: S104
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "featurestore: error: refusing to serve every feature group of 'default' on 0.0.0.0 without API keys: set "
        "server.api_key (FEATURESTORE_SERVER_API_KEY) or server.api_keys, bind 127.0.0.1, or pass --insecure"]
    half_tls = subprocess.run([CLI, "--config", str(config), "serve", "--ssl-certfile", str(config)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert half_tls.returncode == 1 and "TLS needs both --ssl-certfile and --ssl-keyfile" in half_tls.stderr


def test_api_key_new_prints_a_working_entry(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    made = subprocess.run([CLI, "--json", "api-key", "new", "--name", "ml", "--store", "fraud"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert data["entry"] == {"name": "ml", "sha256": key_digest(data["key"]), "stores": ["fraud"]}
    keys = api_keys_from_config(load_config(environ={}, overrides={"server.api_keys": [data["entry"]]}))
    assert Authenticator(keys).check(f"Bearer {data['key']}", "fraud").status == 200
