"""The statistics report: one static HTML file, plots embedded as PNG data URIs, no network needed.

Sections: summary, per-feature statistics of the current snapshot, histograms (numeric) and top
values (categorical), the correlation heat map, each metric across commits, and the validation
history. A small inline script marks the page once every plot has loaded (``data-plots-loaded``)
and records script errors (``data-errors``), which the tests read back from headless Chromium.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurestore.model.protocols import StoreContext
    from featurestore.model.records import FeatureGroupRecord

TREND_METRICS = ("completeness", "mean", "min", "max", "stddev", "approx_distinct")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img class="plot" src="{uri}" alt="{html.escape(alt)}">'


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return html.escape(str(value))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return None


def _histogram_plot(name: str, entry: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt

    if entry.get("histogram"):
        bins = entry["histogram"]
        fig, ax = plt.subplots(figsize=(4.2, 2.6))
        lefts = [b["lower"] for b in bins]
        widths = [max(b["upper"] - b["lower"], 1e-12) if len(bins) > 1 else 1.0 for b in bins]
        ax.bar(lefts, [b["count"] for b in bins], width=widths, align="edge", color="#4c72b0", edgecolor="white")
        ax.set_title(f"{name}: histogram", fontsize=9)
    elif entry.get("top_values"):
        top = entry["top_values"][:15]
        fig, ax = plt.subplots(figsize=(4.2, 2.6))
        ax.barh([str(t["value"])[:24] for t in reversed(top)], [t["count"] for t in reversed(top)], color="#55a868")
        ax.set_title(f"{name}: top values", fontsize=9)
    else:
        return None
    ax.tick_params(labelsize=7)
    return _png(fig)


def _correlation_plot(corr: dict[str, dict[str, Any]]) -> str | None:
    import matplotlib.pyplot as plt

    names = list(corr)
    if len(names) < 2:
        return None
    matrix = [[_num(corr[a][b]) if _num(corr[a][b]) is not None else float("nan") for b in names] for a in names]
    size = 1.2 + 0.5 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(matrix, cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(len(names)):
        for j in range(len(names)):
            if not math.isnan(matrix[i][j]):
                ax.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Correlation (Pearson)", fontsize=9)
    return _png(fig)


def _distinct(value: Any, rows: Any) -> float | None:
    """An approximate distinct count shown as at most the row count (the sketch can overshoot)."""
    v, n = _num(value), _num(rows)
    return min(v, n) if v is not None and n is not None else v


def _trend_plot(column: str, history: list[dict[str, Any]], labels: list[str]) -> str | None:
    import matplotlib.pyplot as plt

    series = {}
    for metric in TREND_METRICS:
        values = [h["columns"].get(column, {}).get(metric) for h in history]
        if metric == "approx_distinct":
            values = [_distinct(v, h.get("rows")) for v, h in zip(values, history, strict=True)]
        points = [(i, _num(v)) for i, v in enumerate(values)]
        points = [(i, v) for i, v in points if v is not None]
        if points:
            series[metric] = points
    if not series:
        return None
    # constrained layout keeps the figure title clear of the panels' titles
    fig, axes = plt.subplots(1, len(series), figsize=(2.1 * len(series), 2.3), squeeze=False, layout="constrained")
    for ax, (metric, points) in zip(axes[0], series.items(), strict=True):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#c44e52")
        ax.set_title("approx. distinct (<= rows)" if metric == "approx_distinct" else metric, fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=5)
        ax.tick_params(axis="y", labelsize=6)
    fig.suptitle(f"{column} across commits (commit time, UTC)", fontsize=9)
    return _png(fig)


STATUS_COLORS = {"Success": "#55a868", "Warning": "#dd8452", "Error": "#c44e52"}


def _validation_plot(reports: list[Any]) -> str | None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if not reports:
        return None
    ordered = list(reversed(reports))
    passed = [len(r.results) - len(r.failures) for r in ordered]
    failed = [len(r.failures) for r in ordered]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.4 * len(ordered) + 1.5), 2.4), layout="constrained")
    xs = list(range(len(ordered)))
    ax.bar(xs, passed, color=STATUS_COLORS["Success"])
    # a failed part takes the colour of its validation's status: Warning orange, Error red
    ax.bar(xs, failed, bottom=passed, color=[STATUS_COLORS.get(r.status, "#999") for r in ordered])
    for x, r in zip(xs, ordered, strict=True):
        if r.outcome == "rejected":
            ax.text(x, passed[x] + failed[x], "rejected", ha="center", va="bottom", fontsize=5, rotation=90)
    ax.set_xticks(xs, [f"#{r.id}" for r in ordered], fontsize=6)
    ax.set_ylim(0, max(p + f for p, f in zip(passed, failed, strict=True)) * 1.6 + 0.5)
    ax.set_title("Constraints per validation", fontsize=9)
    # the legend's swatches are built, not taken from the first bar, and sit beside the plot
    handles = [Patch(color=STATUS_COLORS["Success"], label="passed"),
               Patch(color=STATUS_COLORS["Warning"], label="failed (Warning)"),
               Patch(color=STATUS_COLORS["Error"], label="failed (Error)")]
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _png(fig)


def _commit_labels(ctx: StoreContext | None, fg: FeatureGroupRecord, history: list[dict[str, Any]]) -> list[str]:
    """Commit times (UTC) of the history's commits, for the x axes; the commit id where unknown."""
    table = None
    if ctx is not None:
        from featurestore import offline

        table = offline.open_table(ctx, fg)
    labels = []
    for h in history:
        commit = str(h.get("commit_id") or "")
        try:
            labels.append(table.commit_time(commit).strftime("%m-%d %H:%M:%S") if table and commit else commit)
        except Exception:  # noqa: BLE001 - a commit the timeline no longer knows: show its id
            labels.append(commit[-12:])
    return labels


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:10px}
img.plot{border:1px solid #eee}.Success{color:#2a7a3a}.Warning{color:#b0601a}.Error{color:#b02a2a}
.muted{color:#777;font-size:12px}
"""

SCRIPT = """
(function(){
  var errors=[];
  window.addEventListener('error',function(e){errors.push(String(e.message||e.type));
    document.body.setAttribute('data-errors',String(errors.length));},true);
  function done(){
    var imgs=document.querySelectorAll('img.plot'),ok=0,bad=0;
    imgs.forEach(function(i){if(i.complete&&i.naturalWidth>0){ok++;}else{bad++;}});
    document.body.setAttribute('data-plots-total',String(imgs.length));
    document.body.setAttribute('data-plots-loaded',String(ok));
    document.body.setAttribute('data-plots-broken',String(bad));
    document.body.setAttribute('data-errors',String(errors.length));
  }
  if(document.readyState==='complete'){done();}else{window.addEventListener('load',done);}
})();
"""


def render_report(fg: FeatureGroupRecord, table_stats: dict[str, Any], history: list[dict[str, Any]],
                  reports: list[Any], ctx: StoreContext | None = None) -> str:
    """The report's HTML text (``ctx`` gives the commits' times; without it the commit ids are shown)."""
    title = f"Feature group {fg.name} v{fg.version}"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p class='muted'>Generated {now}. Primary key: {html.escape(', '.join(fg.primary_key))}; "
             f"event time: {html.escape(str(fg.event_time))}; rows in the snapshot: {_fmt(table_stats.get('rows'))}; "
             f"commits with statistics: {len(history)}; validations: {len(reports)}.</p>"]
    columns = table_stats.get("columns", {})
    parts.append("<h2>Features (current snapshot)</h2><table><tr><th class='l'>feature</th><th class='l'>type</th>"
                 "<th>completeness</th><th>approx. distinct</th><th>min</th><th>max</th><th>mean</th><th>stddev</th>"
                 "<th>median</th><th>min len</th><th>max len</th></tr>")
    for name, e in columns.items():
        median = (e.get("quantiles") or {}).get("0.5")
        distinct = _distinct(e.get("approx_distinct"), table_stats.get("rows"))
        shown = {**e, "approx_distinct": None if distinct is None else f"≈ {_fmt(distinct)}"}
        parts.append(f"<tr><td class='l'>{html.escape(name)}</td><td class='l'>{html.escape(e['type'])}</td>"
                     + "".join(f"<td>{_fmt(shown.get(k))}</td>" for k in ("completeness", "approx_distinct", "min",
                                                                          "max", "mean", "stddev"))
                     + f"<td>{_fmt(median)}</td><td>{_fmt(e.get('min_length'))}</td>"
                       f"<td>{_fmt(e.get('max_length'))}</td></tr>")
    parts.append("</table>")
    plots = [p for p in (_histogram_plot(n, e) for n, e in columns.items()) if p]
    parts.append("<h2>Distributions</h2><div class='plots'>" + "".join(_img(p, "distribution") for p in plots)
                 + "</div>" if plots else "<h2>Distributions</h2><p class='muted'>No data yet.</p>")
    heat = _correlation_plot(table_stats.get("correlations") or {})
    parts.append("<h2>Correlations</h2>" + (_img(heat, "correlation heat map") if heat
                                            else "<p class='muted'>Fewer than two numeric features.</p>"))
    parts.append("<h2>Metrics across commits</h2>")
    labels = _commit_labels(ctx, fg, history) if history else []
    trend = [p for p in (_trend_plot(n, history, labels) for n in columns) if p] if history else []
    parts.append("<div class='plots'>" + "".join(_img(p, "metric trend") for p in trend) + "</div>" if trend
                 else "<p class='muted'>No per-commit statistics stored yet.</p>")
    parts.append("<h2>Validation history</h2>")
    vplot = _validation_plot(reports)
    if vplot:
        parts.append(_img(vplot, "validation history"))
    if reports:
        parts.append("<table><tr><th>#</th><th class='l'>validated</th><th class='l'>outcome</th><th class='l'>status"
                     "</th><th class='l'>commit</th><th>rows</th><th class='l'>failed constraints</th></tr>")
        for r in reports:
            failed = "<br>".join(html.escape(f"[{f.level}] {f.constraint}: {f.verdict}" if f.verdict
                                             else f"[{f.level}] {f.constraint} = {_fmt(f.value)}") for f in r.failures)
            parts.append(f"<tr><td>{r.id}</td><td class='l'>{html.escape(r.validated_at)}</td>"
                         f"<td class='l'>{html.escape(str(r.outcome))}</td><td class='l {r.status}'>{r.status}</td>"
                         f"<td class='l'>{html.escape(str(r.commit_id or '—'))}</td><td>{_fmt(r.rows)}</td>"
                         f"<td class='l'>{failed or '—'}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p class='muted'>No validations recorded.</p>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_report(ctx: StoreContext, fg: FeatureGroupRecord, path: str | None = None, compute: bool = True) -> str:
    """Write the report of a feature group (default ``<warehouse>/<store>/reports/<name>_<version>.html``).

    With ``compute`` the current snapshot's statistics (histograms and correlations included) are
    computed and stored first; otherwise the newest stored statistics are shown.
    """
    import matplotlib

    from featurestore.quality import history as stored

    matplotlib.use("Agg")
    if compute:
        table_stats = stored.table_statistics(ctx, fg, {"histograms": True, "correlations": True})
    else:
        table_stats = stored.statistics_of_commit(ctx, fg) or {"rows": 0, "columns": {}}
    history = [s for s in stored.all_statistics(ctx, fg) if s["kind"] == "commit"]
    reports = stored.validation_history(ctx, fg)
    target = Path(path) if path else ctx.location / "reports" / f"{fg.table_name}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(fg, table_stats, history, reports, ctx), encoding="utf-8")
    return str(target)
