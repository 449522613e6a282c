"""How users run it: the CLI against a prepared store, the jobs, code provenance of a script and of an
interactive session, and the alert webhook against a local HTTP receiver."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.server
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from featurestore import Check, CheckLevel, FeatureStore, ValidationError
from featurestore.cli import main as cli_main
from featurestore.config import load_config

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "order_id int, customer string, amount double, ts timestamp"
BASE = dt.datetime(2024, 7, 1)

PRODUCER = '''
import datetime as dt, sys
from featurestore import FeatureStore, Check, CheckLevel
from featurestore.config import load_config
from featurestore.spark import get_session
spark = get_session(master="local[1]", config=load_config(environ={}), conf={"spark.ui.enabled": "false"})
fs = FeatureStore(load_config(sys.argv[1]), spark=spark)
fg = fs.create_feature_group("orders", primary_key="order_id", event_time="ts", description="orders ünïcode",
                             expectation_suite=Check(CheckLevel.Error, "orders").isNonNegative("amount"))
base = dt.datetime(2024, 7, 1)
fg.insert(spark.createDataFrame([(1, "ann", 5.0, base), (2, "bob", 7.0, base)], "{schema}"))
fg.insert(spark.createDataFrame([(3, "cy", 9.0, base)], "{schema}"))
print(fg.commit_details(limit=1))
'''.replace("{schema}", SCHEMA)


def _load_job(name: str):
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def webhook():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, webhook):
    """A store prepared by a script run as its own process (so its provenance is a script)."""
    root = tmp_path_factory.mktemp("tooling")
    config = root / "featurestore.yaml"
    config.write_text(yaml.safe_dump({"warehouse": str(root / "warehouse"),
                                      "alerts": {"webhook_url": webhook[0]}}), encoding="utf-8")
    script = root / "produce_orders.py"
    script.write_text(PRODUCER, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(config)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {"config": str(config), "script": script, "root": root}


def cli(prepared, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["--config", prepared["config"], *argv])
    return code, out.getvalue()


def test_cli_against_a_prepared_store(spark, prepared):
    code, text = cli(prepared, "--json", "feature-groups", "list")
    assert code == 0 and [(r["name"], r["version"]) for r in json.loads(text)] == [("orders", 1)]
    code, text = cli(prepared, "feature-groups", "show", "orders")
    assert code == 0 and "orders ünïcode" in text and "STRICT" in text
    code, text = cli(prepared, "--json", "commits", "orders")
    commits = json.loads(text)
    assert code == 0 and [(c["inserted"], c["updated"]) for c in commits] == [(1, 0), (2, 0)]
    code, text = cli(prepared, "--json", "preview", "orders", "--as-of", commits[1]["commit_id"])
    assert code == 0 and sorted(r["order_id"] for r in json.loads(text)) == [1, 2]
    code, text = cli(prepared, "--json", "statistics", "orders")
    stats = json.loads(text)
    assert stats["rows"] == 1 and stats["commit_id"] == commits[0]["commit_id"]
    code, text = cli(prepared, "statistics", "orders")
    assert code == 0 and "amount" in text and "completeness" in text
    bad = prepared["root"] / "bad.json"
    bad.write_text(json.dumps({"order_id": 9, "customer": "x", "amount": -1.0, "ts": BASE.isoformat()}) + "\n")
    code, text = cli(prepared, "validate", "orders", str(bad), "--format", "json")
    assert code == 3 and "isNonNegative(amount)" in text and "Failure" in text
    code, text = cli(prepared, "--json", "feature-groups", "show", "nope")
    assert code == 1
    code, text = cli(prepared, "report", "orders", "--output", str(prepared["root"] / "r.html"))
    assert code == 0 and (prepared["root"] / "r.html").stat().st_size > 10_000
    fs = FeatureStore(load_config(prepared["config"], environ={}), spark=spark)
    fs.create_feature_view("spend", query=fs.get_feature_group("orders").select(["customer", "amount"]),
                           labels="amount", description="spend ünïcode")
    code, text = cli(prepared, "--json", "feature-views", "list")
    assert code == 0 and json.loads(text) == [{"name": "spend", "version": 1, "features": "customer",
                                               "labels": "amount", "description": "spend ünïcode"}]
    code, text = cli(prepared, "feature-views", "show", "spend")
    assert code == 0 and "spend ünïcode" in text and '"feature_group": "orders"' in text
    code, text = cli(prepared, "--json", "feature-views", "show", "nope")
    assert code == 1


def test_provenance_of_a_script_and_of_an_interactive_session(spark, prepared):
    code, text = cli(prepared, "--json", "code", "orders")
    prov = json.loads(text)
    script = prepared["script"]
    assert prov["kind"] == "script" and prov["path"] == str(script)
    assert prov["sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert prov["content"] == script.read_text(encoding="utf-8")
    assert prov["user"] and prov["host"] and any(p.startswith("pyspark==") for p in prov["packages"])
    code, text = cli(prepared, "code", "orders", "--content")
    assert "fg.insert(" in text
    fs = FeatureStore(load_config(prepared["config"]), spark=spark)
    fg = fs.get_feature_group("orders")
    first = sorted(fg.commit_details())[0]
    assert fg.get_provenance(first)["sha256"] == prov["sha256"]  # the same script made both commits, stored once
    assert fs.registry.get_provenance("commit", fg.id)[0]["commit_id"] == max(fg.commit_details())
    # an interactive session: pytest's __main__ lives in site-packages, which is not user code
    result = fg.insert(spark.createDataFrame([(4, "dee", 1.0, BASE)], SCHEMA))
    mine = fg.get_provenance(result.commit_id)
    assert (mine["kind"], mine["path"], mine["sha256"], mine["content"]) == ("interactive", None, None, None)
    assert mine["user"] and mine["packages"] and mine["python"]
    from featurestore import hudi

    meta = next(e for e in hudi.timeline(fg.location) if e["instant"] == first)["extra_metadata"]
    assert meta["code.sha256"] == prov["sha256"] and meta["code.kind"] == "script"


def test_webhook_on_rejection_warning_and_job_failure(spark, prepared, webhook):
    url, received = webhook
    received.clear()
    fs = FeatureStore(load_config(prepared["config"]), spark=spark)
    fg = fs.get_feature_group("orders")
    with pytest.raises(ValidationError):
        fg.insert(spark.createDataFrame([(10, "x", -5.0, BASE)], SCHEMA))
    event = received[-1]
    assert event["event"] == "validation_rejected" and event["feature_group"] == "orders"
    assert event["failures"][0]["constraint"] == "isNonNegative(amount)"
    soft = fs.create_feature_group("soft", primary_key="order_id",
                                   expectation_suite=Check(CheckLevel.Warning, "w").hasSize(">= 10"))
    soft.insert(spark.createDataFrame([(1, "a", 1.0, BASE)], SCHEMA))
    assert received[-1]["event"] == "validation_warning" and received[-1]["status"] == "Warning"
    job = _load_job("wait_for_commit")
    code = job.main(["--feature-group", "orders", "--timeout", "0", "--config", prepared["config"]])
    assert code == 1 and received[-1]["event"] == "job_failed" and received[-1]["job"] == "wait_for_commit"
    # Every job alerts on failure, also one that fails before it connects (a missing definition file).
    failures = {
        "ingest": ["--feature-group", "orders", "--source", str(prepared["root"] / "missing"), "--format", "json"],
        "materialize": ["--feature-group", "no_such_group"],
        "create_training_dataset": ["--definition", str(prepared["root"] / "missing.yaml")],
    }
    for name, argv in failures.items():
        before = len(received)
        assert _load_job(name).main([*argv, "--config", prepared["config"]]) == 1, name
        assert len(received) == before + 1 and received[-1]["event"] == "job_failed", name
        assert received[-1]["job"] == name and received[-1]["reason"], name
    assert "missing.yaml" in received[-1]["reason"]


def test_jobs_validate_statistics_maintenance_and_wait(spark, prepared, capsys):
    fs = FeatureStore(load_config(prepared["config"]), spark=spark)
    fg = fs.get_feature_group("orders")
    newest = max(fg.commit_details())
    wait = _load_job("wait_for_commit")
    assert wait.main(["--feature-group", "orders", "--after", "latest", "--timeout", "0",
                      "--config", prepared["config"]]) == 1
    older = sorted(fg.commit_details())[0]
    assert wait.main(["--feature-group", "orders", "--after", older, "--timeout", "0",
                      "--config", prepared["config"]]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == newest

    good = prepared["root"] / "good.json"
    good.write_text(json.dumps({"order_id": 1, "customer": "x", "amount": 1.0, "ts": BASE.isoformat()}) + "\n")
    validate = _load_job("validate")
    assert validate.main(["--feature-group", "orders", "--source", str(good), "--format", "json",
                          "--config", prepared["config"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "Success"
    assert validate.main(["--feature-group", "orders", "--source", str(prepared["root"] / "missing.json"),
                          "--format", "json", "--config", prepared["config"]]) == 1
    assert "validate: error:" in capsys.readouterr().err

    stats_job = _load_job("compute_statistics")
    assert stats_job.main(["--feature-group", "orders", "--histograms", "--config", prepared["config"]]) == 0
    assert fg.get_statistics()["kind"] == "table"

    maintenance = _load_job("maintenance")
    for i in range(3):
        fg.insert(spark.createDataFrame([(1, "ann", float(i), BASE + dt.timedelta(hours=i + 1))], SCHEMA))
    files_before = sum(1 for _ in Path(fg.location).rglob("*.parquet"))
    assert maintenance.main(["--feature-group", "orders", "--retain-commits", "1", "--vacuum-rejected-days", "0",
                             "--config", prepared["config"]]) == 0
    removed = int(capsys.readouterr().out.strip().splitlines()[-1])
    assert removed > 0 and sum(1 for _ in Path(fg.location).rglob("*.parquet")) == files_before - removed
    assert {r.order_id for r in fg.read().collect()} == {1, 2, 3, 4}
    assert all(h.outcome != "rejected" for h in fg.get_validation_history())
    assert maintenance.main(["--feature-group", "nope", "--config", prepared["config"]]) == 1
