"""Do maps hold up on complex images? The summary of a study's per-image table (:class:`glimpse.batch.study.StudyTask`
rows): for each complexity feature and each method's metric, Spearman's ρ over the images with a percentile
bootstrap interval (images resampled with replacement), and the metric's mean in each quantile bin of the
feature. Plots: a scatter per method and the binned means (matplotlib figures, :func:`scatter_figure` and
:func:`binned_figure`, that the Evaluate page draws and :func:`write_plots` writes as PNG).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

from glimpse.map_metrics import spearman, spearman_rows

#: complexity features the summary correlates by default
FEATURES = ("MSG", "edge_density")
#: per-method metrics of a study row, in the order tables list them
METRICS = ("deletion_auc", "insertion_auc", "agreement", "pointing_game", "relevance_mass")
#: what a higher value of each metric means
BETTER = {"deletion_auc": "lower", "insertion_auc": "higher", "agreement": "higher", "pointing_game": "higher",
          "relevance_mass": "higher", "target_probability": "higher"}  # fmt: skip
#: per-image columns of the model itself (not of a method), correlated as method "model"
MODEL_METRICS = ("target_probability",)


def bootstrap_spearman(
    x: Sequence[float],
    y: Sequence[float],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    groups: Sequence | None = None,
) -> tuple[float, float, float, int]:
    """(ρ, low, high, n): Spearman's ρ of the finite pairs and its percentile bootstrap interval at ``level``
    (``resamples`` resamples of the pairs; a resample whose ρ is undefined, e.g. constant, is dropped).

    With ``groups`` (one label per pair) the resamples draw whole groups with replacement (a cluster bootstrap):
    images that are not independent, as a photograph and its crops, then count once, and the interval widens.

    >>> rng = np.random.default_rng(0)  # six pictures, five near-copies of each
    >>> x = np.repeat(np.arange(6.0), 5) + rng.normal(0, 0.01, 30)
    >>> y = np.repeat(rng.normal(size=6), 5) + rng.normal(0, 0.01, 30)
    >>> _, low, high, _ = bootstrap_spearman(x, y, resamples=300)
    >>> _, g_low, g_high, _ = bootstrap_spearman(x, y, resamples=300, groups=np.repeat(np.arange(6), 5))
    >>> bool(g_high - g_low > high - low)
    True
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    labels = None if groups is None else np.asarray(groups, dtype=object)[keep]
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3:
        return math.nan, math.nan, math.nan, n
    rho = spearman(x, y)
    rng = np.random.default_rng(seed)
    if labels is None:
        i = rng.integers(0, n, size=(int(resamples), n))
        draws = spearman_rows(x[i], y[i])  # every resample ranked at once: a summary of 32 cells takes ~0.1 s
    else:
        members = [np.flatnonzero(labels == g) for g in dict.fromkeys(labels)]
        picks = rng.integers(0, len(members), size=(int(resamples), len(members)))
        draws = np.array([spearman(x[j], y[j]) for j in (np.concatenate([members[g] for g in row]) for row in picks)])
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return rho, math.nan, math.nan, n
    tail = (1.0 - level) / 2
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return rho, float(low), float(high), n


@dataclass(frozen=True)
class _Cell:
    """One (feature, method, metric) cell of the summary; :meth:`row` is its table row, the fields in order
    under the table's names (:attr:`COLUMNS` renames those that differ)."""

    feature: str
    method: str
    metric: str

    COLUMNS: ClassVar[dict[str, str]] = {}

    def row(self) -> dict:
        return {self.COLUMNS.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Correlation(_Cell):
    rho: float
    low: float
    high: float
    n: int

    COLUMNS: ClassVar[dict[str, str]] = {"low": "ci_low", "high": "ci_high", "n": "images"}

    def row(self) -> dict:
        return {**super().row(), "better": BETTER[self.metric]}


@dataclass(frozen=True)
class Bin(_Cell):
    index: int
    low: float  # the feature's range in this bin
    high: float
    mean: float
    sd: float
    n: int

    COLUMNS: ClassVar[dict[str, str]] = {"index": "bin", "low": "feature_low", "high": "feature_high", "n": "images"}


@dataclass(frozen=True)
class StudySummary:
    methods: tuple[str, ...]
    features: tuple[str, ...]
    images: int
    correlations: tuple[Correlation, ...]
    bins: tuple[Bin, ...]
    resamples: int
    seed: int
    #: the column whose values the bootstrap resampled as groups (None: single images)
    groups: str | None = None

    def get(self, feature: str, method: str, metric: str) -> Correlation:
        for c in self.correlations:
            if (c.feature, c.method, c.metric) == (feature, method, metric):
                return c
        raise KeyError(f"no correlation of {method} {metric} with {feature}")

    def rows(self) -> list[dict]:
        return [c.row() for c in self.correlations]

    def meta(self) -> dict:
        return {
            "lens": "study",
            "images": self.images,
            "methods": list(self.methods),
            "features": list(self.features),
            "bootstrap": {
                "resamples": self.resamples,
                "seed": self.seed,
                "level": 0.95,
                "kind": "percentile",
                "unit": self.groups or "image",
            },  # fmt: skip
            "correlations": self.rows(),
            "bins": [b.row() for b in self.bins],
        }


#: the group of a photograph's file and its crops' (``chelsea.png``, ``chelsea-crop01.png`` -> ``chelsea``)
PHOTO_GROUPS = r"^[^-.]+"


def with_groups(frame, pattern: str, column: str = "group"):
    """``frame`` with a ``column`` naming each row's group: the first match of the regular expression ``pattern``
    in its file name (the whole name where it does not match), e.g. :data:`PHOTO_GROUPS`.

    >>> import pandas as pd
    >>> list(with_groups(pd.DataFrame({"path": ["a/cat.png", "a/cat-crop01.png", "dog.png"]}), PHOTO_GROUPS)["group"])
    ['cat', 'cat', 'dog']
    """
    try:
        rule = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"groups: {pattern!r} is not a regular expression ({err})") from None

    def group(path: str) -> str:
        name = Path(str(path)).name
        found = rule.search(name)
        return found.group(0) if found else name

    return frame.assign(**{column: frame["path"].map(group)})


def summary_record(summary: StudySummary, frame, *, source: str, model_id: str, engine: str) -> dict:
    """The summary JSON of a run (``glimpse study --out``'s summary.json, the Evaluate tab's download): the
    summary's meta with where the images came from, the model, the engine and the rows with an error."""
    errors = int(frame["error"].notna().sum())
    return {**summary.meta(), "input": source, "model_id": model_id, "engine": engine, "errors": errors}


def _ok(frame):
    """The rows without an error."""
    return frame[frame["error"].isna()] if "error" in frame else frame


def metric_columns(frame, methods: Sequence[str]) -> list[tuple[str, str, str]]:
    """(method, metric, column) for every metric the table has values of (the model's own as method "model")."""
    out = [("model", m, m) for m in MODEL_METRICS if m in frame and frame[m].notna().any()]
    for m in methods:
        for metric in METRICS:
            column = f"{m}_{metric}"
            if column in frame and frame[column].notna().any():
                out.append((m, metric, column))
    return out


def summarise(
    frame,
    methods: Sequence[str],
    *,
    features: Sequence[str] = FEATURES,
    bins: int = 4,
    resamples: int = 1000,
    seed: int = 0,
    groups: str | None = None,
) -> StudySummary:
    """The study's answer for a per-image table ``frame`` (pandas; rows with an ``error`` are left out); with
    ``groups`` (a column of the table) the intervals resample its groups, not images (:func:`bootstrap_spearman`)."""
    frame = _ok(frame)
    if groups is not None and groups not in frame:
        raise ValueError(f"groups: no column {groups!r} in the table")
    labels = None if groups is None else frame[groups].to_numpy()
    missing = [f for f in features if f not in frame]
    if missing:
        raise ValueError(f"features: {missing} not in the table; it has {', '.join(c for c in frame.columns)}")
    if bins < 1:
        raise ValueError(f"bins: at least 1, got {bins}")
    correlations, binned = [], []
    for feature in features:
        x = frame[feature].to_numpy(np.float64)
        edges = np.quantile(x[np.isfinite(x)], np.linspace(0, 1, bins + 1)) if np.isfinite(x).any() else None
        for method, metric, column in metric_columns(frame, methods):
            y = frame[column].to_numpy(np.float64)
            rho, low, high, n = bootstrap_spearman(x, y, resamples=resamples, seed=seed, groups=labels)
            correlations.append(Correlation(feature, method, metric, rho, low, high, n))
            if edges is None:
                continue
            which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
            for b in range(bins):
                sel = (which == b) & np.isfinite(x) & np.isfinite(y)
                vals = y[sel]
                mean = float(vals.mean()) if vals.size else math.nan
                sd = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
                binned.append(
                    Bin(feature, method, metric, b, float(edges[b]), float(edges[b + 1]), mean, sd, int(sel.sum()))
                )
    return StudySummary(tuple(methods), tuple(features), int(len(frame)), tuple(correlations), tuple(binned),
                        int(resamples), int(seed), groups)  # fmt: skip


def plotted_metrics(frame, summary: StudySummary) -> list[str]:
    """The per-method metrics the table has values of, in :data:`METRICS`' order (what the plots can show)."""
    columns = metric_columns(frame, summary.methods)
    return [m for m in METRICS if any(c[1] == m for c in columns)]


def scatter_figure(frame, summary: StudySummary, *, feature: str | None = None, metrics: Sequence[str] | None = None):
    """A matplotlib figure (no pyplot: safe in a server's threads): one scatter per method (rows) and metric
    (columns, default every one with values) of the metric against ``feature``, ρ and its interval in the titles."""
    from matplotlib.figure import Figure

    feature = feature or summary.features[0]
    frame = _ok(frame)
    metrics = list(metrics) if metrics is not None else plotted_metrics(frame, summary)
    fig = Figure(figsize=(3.2 * len(metrics), 2.6 * len(summary.methods)))
    axes = fig.subplots(len(summary.methods), len(metrics), squeeze=False)
    for i, method in enumerate(summary.methods):
        for j, metric in enumerate(metrics):
            ax = axes[i][j]
            column = f"{method}_{metric}"
            if column not in frame or not frame[column].notna().any():
                ax.axis("off")
                continue
            ax.scatter(frame[feature], frame[column], s=8, alpha=0.6)
            c = summary.get(feature, method, metric)
            ax.set_title(f"{method}: {metric}\nρ = {c.rho:.2f} [{c.low:.2f}, {c.high:.2f}]", fontsize=8)
            ax.set_xlabel(feature, fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def binned_figure(summary: StudySummary, *, feature: str | None = None, metrics: Sequence[str] | None = None):
    """A matplotlib figure: per metric (default every one the summary has), each method's mean in each quantile
    bin of ``feature``, with its standard error."""
    from matplotlib.figure import Figure

    feature = feature or summary.features[0]
    if metrics is None:
        metrics = [m for m in METRICS if any(b.metric == m for b in summary.bins)]
    fig = Figure(figsize=(3.4 * len(metrics), 2.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for j, metric in enumerate(metrics):
        ax = axes[0][j]
        for method in summary.methods:
            rows = [b for b in summary.bins if (b.feature, b.method, b.metric) == (feature, method, metric)]
            if rows:
                ax.errorbar([b.index + 1 for b in rows], [b.mean for b in rows],
                            yerr=[0 if math.isnan(b.sd) else b.sd / math.sqrt(max(b.n, 1)) for b in rows],
                            marker="o", capsize=2, label=method)  # fmt: skip
        ax.set_title(f"{metric} ({BETTER[metric]} is better)", fontsize=8)
        ax.set_xlabel(f"{feature} quantile bin", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_plots(frame, summary: StudySummary, out: str | Path, *, feature: str | None = None) -> list[Path]:
    """PNG plots under ``out``: per method, its metrics against ``feature`` (:func:`scatter_figure`), and the
    metrics' means per quantile bin of the feature (:func:`binned_figure`). Returns the files written."""
    feature = feature or summary.features[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = plotted_metrics(_ok(frame), summary)
    written = []
    for name, fig in (
        ("scatter", scatter_figure(frame, summary, feature=feature, metrics=metrics)),
        ("binned", binned_figure(summary, feature=feature, metrics=metrics)),
    ):
        path = out / f"{name}_{feature}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written
