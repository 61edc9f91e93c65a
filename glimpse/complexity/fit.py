"""The paper's linear models of human complexity ratings, with its cross-validation protocol.

Sarıtaş, Dayan, Shen & Nath, arXiv:2501.15890 (2025), linear/cross_validation.py. For each dataset and formula:
ordinary least squares ``complexity ~ x_1 + ... + x_k`` (statsmodels formula API), N = 3 folds shuffled with
``KFold(shuffle=True, random_state=1 + m)`` for m = 0..M-1, score = Spearman's rho between predictions and ratings
on each test fold, reported as the mean over all M x 3 folds. The base regressors are ``sqrt(# SAM masks)`` and
``sqrt(# FC-CLIP classes)`` (Shen et al. 2024).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: The ratings column the models predict.
TARGET = "complexity"

#: Shipped-table column names -> formula names (the paper's ``rename``).
RENAME = {
    "# of SAM segmentations": "num_seg_64points",
    "# of FC-CLIP classes": "num_classes",
    "gemini surprise score": "gemini_surprise_score",
    "edge density": "edge_density",
    "human surprise score": "human_surprise_score",
    "AMNet memorability": "amnet_memorability",
}

#: The four headline formulas of the paper's table.
HEADLINE_FORMULAS: dict[str, str] = {
    "seg+cls": "complexity ~ sqrt_seg_64points + sqrt_num_classes",
    "seg+cls+MSG": "complexity ~ sqrt_seg_64points + sqrt_num_classes + MSG",
    "seg+cls+MUC4+MSG": "complexity ~ sqrt_seg_64points + sqrt_num_classes + MUC4 + MSG",
    "seg+cls+MUC4+MSG+surprise": (
        "complexity ~ sqrt_seg_64points + sqrt_num_classes + MUC4 + MSG + gemini_surprise_score"
    ),
}

#: Repeats M of the 3-fold split per dataset family, as in the paper.
PAPER_REPEATS: dict[str, int] = {"RSIVL": 20, "SVG": 20, "SAVOIAS": 2, "VISC": 2, "IC9600": 1}

N_SPLITS = 3
RANDOM_SEED = 1


#: The paper's feature tables, shipped inside the package (see the README in that folder).
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "complexity_in_complexity"


def data_dir() -> Path:
    """Folder of the paper's tables: ``$GLIMPSE_COMPLEXITY_DATA`` if set, else the copy shipped with glimpse."""
    env = os.environ.get("GLIMPSE_COMPLEXITY_DATA")
    return Path(env) if env else DATA_DIR


def shipped_tables(folder: str | os.PathLike | None = None) -> dict[str, Path]:
    """Dataset name -> CSV path of the paper's tables.

    Raises
    ------
    FileNotFoundError
        The folder is missing or holds no CSV (a broken install, or ``$GLIMPSE_COMPLEXITY_DATA`` set wrong).
    """
    base = Path(folder) if folder is not None else data_dir()
    tables = {p.stem: p for p in sorted(base.glob("*.csv"))} if base.is_dir() else {}
    if not tables:
        raise FileNotFoundError(
            f"complexity tables: no CSV files in {base}; reinstall glimpse or fix $GLIMPSE_COMPLEXITY_DATA"
        )
    return tables


def default_repeats(dataset: str) -> int:
    """The paper's M for a dataset name (its family is the first word: "SAVOIAS Art" -> 2); 1 if unknown."""
    family = dataset.split()[0] if dataset.split() else dataset
    return PAPER_REPEATS.get(family, 1)


def resolve_formula(formula: str) -> str:
    """A headline name ("seg+cls") or a formula; a right-hand side alone gets ``complexity ~`` prepended."""
    if formula in HEADLINE_FORMULAS:
        return HEADLINE_FORMULAS[formula]
    if not formula.strip():
        raise ValueError(f"formula: empty; use a name ({', '.join(HEADLINE_FORMULAS)}) or 'complexity ~ a + b'")
    return formula if "~" in formula else f"{TARGET} ~ {formula}"


def formula_columns(formula: str) -> list[str]:
    """Column names a formula refers to (identifiers that are not function calls)."""
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*(?!\s*\()", formula)
    return [n for n in dict.fromkeys(names) if n not in {"np", "I", "C"}]


def prepare(table: pd.DataFrame | str | os.PathLike | bytes, *, name: str = "table") -> pd.DataFrame:
    """Read a ratings table and derive the paper's regressors.

    Renames the shipped columns (:data:`RENAME`), adds ``sqrt_seg_64points = sqrt(num_seg_64points)`` and
    ``sqrt_num_classes = sqrt(num_classes)`` when those counts are present, and drops rows whose Gemini surprise
    score is missing (the paper's filter) when that column exists.

    Parameters
    ----------
    table : DataFrame, path or bytes
        The table itself, a CSV path, or CSV bytes (an upload).
    name : str
        Used in error messages.

    Raises
    ------
    ValueError
        Unreadable CSV, or no ``complexity`` column.
    """
    if isinstance(table, pd.DataFrame):
        df = table.copy()
    else:
        try:
            df = pd.read_csv(io.BytesIO(table) if isinstance(table, bytes) else table)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"table: {name} is not a readable CSV ({str(err).splitlines()[0]})") from err
    df = df.rename(columns={k: v for k, v in RENAME.items() if k in df.columns})
    if TARGET not in df.columns:
        raise ValueError(
            f"table: {name} has no {TARGET!r} column (human ratings); columns are {', '.join(map(str, df.columns))}"
        )
    if "num_seg_64points" in df.columns:
        df["sqrt_seg_64points"] = np.sqrt(pd.to_numeric(df["num_seg_64points"], errors="coerce"))
    if "num_classes" in df.columns:
        df["sqrt_num_classes"] = np.sqrt(pd.to_numeric(df["num_classes"], errors="coerce"))
    if "gemini_surprise_score" in df.columns:
        df = df[df["gemini_surprise_score"].notna()]
    return df.reset_index(drop=True)


def kfold_splits(n: int, *, n_splits: int = N_SPLITS, seed: int = RANDOM_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row indices of scikit-learn's ``KFold(n_splits, shuffle=True, random_state=seed)``.

    The permutation is ``np.random.RandomState(seed).shuffle(arange(n))``; the first ``n % n_splits`` folds hold one
    extra row; both index arrays are sorted, as scikit-learn returns them.
    """
    if n < n_splits:
        raise ValueError(f"table: {n} rows cannot be split into {n_splits} folds")
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_splits, n // n_splits, dtype=int)
    sizes[: n % n_splits] += 1
    out = []
    start = 0
    for size in sizes:
        test = np.zeros(n, dtype=bool)
        test[order[start : start + size]] = True
        out.append((np.flatnonzero(~test), np.flatnonzero(test)))
        start += size
    return out


@dataclass(frozen=True)
class FormulaScore:
    """Cross-validated score of one formula on one dataset.

    ``fold_rho`` holds Spearman's rho of every test fold (M x 3); ``predicted`` the mean test prediction of every
    row over the repeats (each row is tested once per repeat), next to ``rated``.
    """

    dataset: str
    name: str
    formula: str
    repeats: int
    n: int
    fold_rho: np.ndarray
    predicted: np.ndarray
    rated: np.ndarray
    image_id: tuple[str, ...]

    @property
    def mean_rho(self) -> float:
        return float(np.mean(self.fold_rho))

    @property
    def std_rho(self) -> float:
        return float(np.std(self.fold_rho))

    def summary(self) -> dict:
        """dataset, name, formula, n, repeats, mean and std of the test Spearman (plain Python values)."""
        described = {field: getattr(self, field) for field in ("dataset", "name", "formula", "n", "repeats")}
        return {**described, "mean_spearman": self.mean_rho, "std_spearman": self.std_rho}


def cross_validate(
    table: pd.DataFrame,
    formulas: Mapping[str, str] | Sequence[str] | None = None,
    *,
    repeats: int = 1,
    dataset: str = "table",
    n_splits: int = N_SPLITS,
) -> list[FormulaScore]:
    """Mean test Spearman of OLS formulas under the paper's repeated 3-fold protocol.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`prepare` (or any frame with the formula's columns and ``complexity``).
    formulas : mapping name -> formula, or sequence of formulas / headline names, optional
        Default: :data:`HEADLINE_FORMULAS`.
    repeats : int
        M, the number of shuffled 3-fold splits (seeds 1..M).
    dataset : str
        Name carried into the results.

    Returns
    -------
    list of FormulaScore
        One per formula, in order.

    Raises
    ------
    ValueError
        A formula names a column the table lacks, or too few complete rows.
    """
    import statsmodels.formula.api as smf
    from patsy import PatsyError
    from scipy.stats import spearmanr

    if repeats < 1:
        raise ValueError(f"repeats: must be at least 1, got {repeats}")
    if formulas is None:
        formulas = HEADLINE_FORMULAS
    if not isinstance(formulas, Mapping):
        formulas = {f: resolve_formula(f) for f in formulas}
    results = []
    for name, raw in formulas.items():
        formula = resolve_formula(raw)
        missing = [c for c in formula_columns(formula) if c not in table.columns]
        if missing:
            raise ValueError(
                f"formula: {dataset} lacks column(s) {', '.join(missing)} needed by {formula!r}; "
                f"available: {', '.join(map(str, table.columns))}"
            )
        needed = formula_columns(formula)
        numeric = table.assign(**{c: pd.to_numeric(table[c], errors="coerce") for c in needed})  # text cells: NaN
        used = numeric.replace([np.inf, -np.inf], np.nan).dropna(subset=needed).reset_index(drop=True)
        if len(used) < n_splits:
            raise ValueError(
                f"table: {dataset} has {len(used)} rows with numbers in every column of {formula!r}; "
                f"at least {n_splits} are needed"
            )
        # The formula API builds the design matrix once; each fold's OLS is the same estimate statsmodels would
        # get from the fold's rows alone (the formulas hold no data-dependent transforms).
        try:
            model = smf.ols(formula, data=used)
        except (PatsyError, ValueError, TypeError) as err:  # a formula the table cannot feed
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"formula: {formula!r} cannot be fitted on {dataset} ({first})") from err
        y, x = np.asarray(model.endog, dtype=np.float64), np.asarray(model.exog, dtype=np.float64)
        n = len(y)
        rhos, pred_sum, pred_count = [], np.zeros(n), np.zeros(n)
        for m in range(repeats):
            for train, test in kfold_splits(n, n_splits=n_splits, seed=RANDOM_SEED + m):
                beta = np.linalg.lstsq(x[train], y[train], rcond=None)[0]
                pred = x[test] @ beta
                rhos.append(spearmanr(pred, y[test]).statistic)
                pred_sum[test] += pred
                pred_count[test] += 1
        ids = used["image_id"].astype(str) if "image_id" in used.columns else used.index.astype(str)
        results.append(
            FormulaScore(
                dataset=dataset,
                name=name,
                formula=formula,
                repeats=repeats,
                n=n,
                fold_rho=np.asarray(rhos, dtype=np.float64),
                predicted=pred_sum / np.maximum(pred_count, 1),
                rated=y,
                image_id=tuple(ids),
            )
        )
    return results


def score_table(results: Sequence[FormulaScore]) -> pd.DataFrame:
    """Long table: dataset, formula name, formula, n, repeats, mean and std of the test Spearman."""
    return pd.DataFrame([r.summary() for r in results])
