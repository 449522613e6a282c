"""Every notebook in notebooks/ runs top to bottom in a fresh kernel (nbclient); a failing cell fails
the test. The notebook's commits record the notebook as their code (provenance)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from featurestore import FeatureStore
from featurestore.config import load_config

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_training_data.ipynb", "03_pipeline.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(spark, path, tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    # The kernel inherits these: configuration by environment, as a user's notebook server would pass it.
    monkeypatch.setenv("FEATURESTORE_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("FEATURESTORE_SPARK_MASTER", "local[2]")
    monkeypatch.setenv("FEATURESTORE_SPARK_SHUFFLE_PARTITIONS", "2")
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))  # what Jupyter sets for a notebook's kernel
    monkeypatch.delenv("FEATURESTORE_CONFIG", raising=False)
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if path.stem == "01_quickstart":
        fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(warehouse)}), "nb_quickstart",
                          spark=spark)
        prov = fs.get_feature_group("user_clicks").get_provenance()
        assert prov["kind"] == "notebook" and prov["path"] == str(path)
        assert prov["content"] == path.read_bytes()
    if path.stem == "02_training_data":
        fs = FeatureStore(load_config(environ={}, overrides={"warehouse": str(warehouse)}), "nb_training",
                          spark=spark)
        prov = fs.get_training_dataset("spend_labels", 1).get_provenance()
        assert prov["kind"] == "notebook" and prov["content"] == path.read_bytes()
    assert os.environ["FEATURESTORE_WAREHOUSE"] == str(warehouse)
