"""Stored quality records of a feature group: statistics per commit and of the snapshot, validation
reports, metric history; and the statistics report built from them."""

from __future__ import annotations

from typing import Any

from featurestore import offline
from featurestore.model.protocols import StoreContext
from featurestore.model.records import FeatureGroupRecord
from featurestore.quality.statistics import compute_statistics
from featurestore.quality.suite import ValidationReport


def _statistics_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {"commit_id": row["commit_id"], "kind": row["kind"], "computed_at": row["computed_at"].isoformat() + "Z",
            **row["stats"]}


def statistics_of_commit(ctx: StoreContext, record: FeatureGroupRecord,
                         commit_id: str | None = None) -> dict[str, Any] | None:
    """Statistics of a commit's data (default: the newest stored), or None."""
    rows = ctx.registry.list_statistics(record.id, commit_id=commit_id)
    return _statistics_entry(rows[0]) if rows else None


def all_statistics(ctx: StoreContext, record: FeatureGroupRecord) -> list[dict[str, Any]]:
    """Every stored statistics record, oldest first (the report plots them across commits)."""
    return [_statistics_entry(r) for r in reversed(ctx.registry.list_statistics(record.id))]


def table_statistics(ctx: StoreContext, record: FeatureGroupRecord,
                     config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Statistics over the whole current snapshot, stored with ``kind="table"`` and the latest commit id."""
    cfg = {**record.statistics_options, **(config or {}), "enabled": True}
    table = offline.open_table(ctx, record)
    stats = compute_statistics(table.read(), cfg)
    commits = table.commits()
    latest = commits[-1].commit_id if commits else None
    ctx.registry.add_statistics(record.id, latest, "table", stats)
    return {"commit_id": latest, "kind": "table", **stats}


def validation_history(ctx: StoreContext, record: FeatureGroupRecord,
                       limit: int | None = None) -> list[ValidationReport]:
    """Stored validation reports, newest first, each with ``commit_id`` and ``outcome``
    (accepted, rejected or dry_run)."""
    return [ValidationReport.from_dict(r["report"], id=r["id"], commit_id=r["commit_id"], outcome=r["outcome"],
                                       policy=r["policy"])
            for r in ctx.registry.list_validation_reports(record.id, limit)]
