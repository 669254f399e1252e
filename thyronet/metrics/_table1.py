"""Table 1: characteristics of the cohorts with Kruskal-Wallis, chi-square and exact tests.

:func:`baseline_table` computes it in a long, machine-readable form;
:func:`format_baseline_table` lays it out in the tableone style for a manuscript.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from thyronet.metrics._validation import check_positive_int
from thyronet.schema import (
    CLINICAL_BY_NAME,
    CLINICAL_COLUMNS,
    COHORT_COLUMN,
    COHORTS,
    ID_COLUMN,
    ROI_SUFFIX,
    VIEW_COLUMNS,
    display_label,
)

__all__ = ["baseline_table", "format_baseline_table"]

_DASH = "\u2013"
MISSING_LEVEL = "(missing)"


def _group_order(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna().unique())
        return [c for c in values.cat.categories if c in present]
    present = list(pd.unique(values.dropna()))
    if all(v in COHORTS for v in present):
        return [c for c in COHORTS if c in present]
    return sorted(present, key=str)


def _default_variables(frame: pd.DataFrame, groupby: str) -> list[str]:
    if all(c in frame.columns for c in CLINICAL_COLUMNS):
        return list(CLINICAL_COLUMNS)
    skip = {groupby, ID_COLUMN, *VIEW_COLUMNS, *(v + ROI_SUFFIX for v in VIEW_COLUMNS)}
    return [c for c in frame.columns if c not in skip]


def _levels(column: pd.Series, name: str) -> tuple[pd.Series, list]:
    """Categorical values as strings and their display order."""
    observed = column.dropna()
    var = CLINICAL_BY_NAME.get(name)
    if var is not None and var.kind != "numeric":
        lookup = {c.lower(): c for c in var.categories}
        values = column.map(
            lambda v: v if pd.isna(v) else lookup.get(str(v).strip().lower(), str(v))
        )
        extra = sorted(set(values.dropna()) - set(var.categories), key=str)
        return values, [*var.categories, *extra]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object).map(lambda v: v if pd.isna(v) else str(v)), [
            str(c) for c in column.cat.categories
        ]
    values = column.astype(object).map(lambda v: v if pd.isna(v) else str(v))
    try:
        ordered = sorted(pd.unique(observed))
    except TypeError:
        ordered = sorted(pd.unique(observed), key=str)
    return values, list(dict.fromkeys(str(v) for v in ordered))


def _is_continuous(column: pd.Series, name: str, continuous: set, categorical: set) -> bool:
    if name in continuous:
        return True
    if name in categorical:
        return False
    var = CLINICAL_BY_NAME.get(name)
    if var is not None:
        return var.kind == "numeric"
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


EXACT_MODES = ("auto", "never", "always")
CHI_SQUARE = "chi-square"
FISHER = "Fisher's exact"
FREEMAN_HALTON = "Fisher-Freeman-Halton (Monte Carlo)"


def _categorical_test(
    table: np.ndarray, exact: str, n_resamples: int, random_state
) -> tuple[float, float, str]:
    """``(statistic, p_value, test name)`` of a level x group table (at least 2 x 2).

    ``exact="auto"``: Pearson's chi-square when every expected count is >= 5,
    else Fisher's exact test (2 x 2) or the Fisher-Freeman-Halton test (larger).
    The exact tests have no statistic in the table (NaN). Fisher-Freeman-Halton
    P is scipy's Monte Carlo estimate over ``n_resamples`` random tables with
    the observed margins, seeded with ``random_state`` (the same for every
    variable, so a variable's P does not depend on the others).
    """
    chi2 = stats.chi2_contingency(table, correction=False)
    if exact == "never" or (exact == "auto" and chi2.expected_freq.min() >= 5):
        return float(chi2.statistic), float(chi2.pvalue), CHI_SQUARE
    if table.shape == (2, 2):
        return np.nan, float(stats.fisher_exact(table).pvalue), FISHER
    method = stats.MonteCarloMethod(
        n_resamples=n_resamples, rng=np.random.default_rng(random_state)
    )
    return np.nan, float(stats.fisher_exact(table, method=method).pvalue), FREEMAN_HALTON


def _fmt(value: float, digits: int) -> str:
    return "" if np.isnan(value) else f"{value:.{digits}f}"


def baseline_table(
    frame: pd.DataFrame,
    groupby: str = COHORT_COLUMN,
    *,
    variables: Sequence[str] | None = None,
    continuous: Iterable[str] = (),
    categorical: Iterable[str] = (),
    digits: int = 1,
    exact: str = "auto",
    n_resamples: int = 20_000,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """The paper's Table 1: characteristics per group with a test of difference between groups.

    Continuous variables are shown as median (Q1–Q3) and compared with the
    Kruskal-Wallis test (``scipy.stats.kruskal``, tie-corrected); categorical
    ones as n (%) per level, compared on the level x group table (levels and
    groups with no subjects are left out of the test) by:

    - Pearson's chi-square test (``scipy.stats.chi2_contingency`` without
      Yates' correction, as SPSS reports it) when every expected count is at
      least 5 (Cochran's rule);
    - otherwise an exact test: Fisher's exact test for a 2 x 2 table
      (``scipy.stats.fisher_exact``, two-sided), the Fisher-Freeman-Halton test
      for a larger one (scipy's seeded Monte Carlo P over ``n_resamples``
      tables with the observed margins; its standard error is at most
      ``0.5 / sqrt(n_resamples)``, 0.0035 by default). The exact tests leave
      ``statistic`` empty (NaN); the ``test`` column names the test used.

    Percentages are of the group's non-missing values; missing values are
    counted in a ``"(missing)"`` row and left out of the statistics. A test
    that cannot be computed (one group, one level, all values equal) gives NaN.

    Variable kinds: the 13 clinical indicators of the cohort schema use their
    schema kind and category order; other columns are continuous when numeric
    (not boolean) and categorical otherwise, unless listed in ``continuous`` or
    ``categorical``.

    Parameters
    ----------
    frame : DataFrame
        One row per subject, e.g. a cohort.
    groupby : str, default="cohort"
        Column defining the groups (columns of the table). Cohort names
        train/validation/test are shown in that order.
    variables : sequence of str, optional
        Rows of the table, in order. Default: the 13 clinical indicators when
        the frame has them all, else every column except ``groupby`` and the
        schema's image, ROI and ID columns.
    continuous, categorical : iterable of str
        Force the kind of these variables.
    digits : int, default=1
        Decimals of medians, quartiles and percentages.
    exact : {"auto", "never", "always"}, default="auto"
        ``"auto"``: the rule above; ``"never"``: chi-square for every table (the
        paper's Table 1, and this function before exact tests were added);
        ``"always"``: Fisher / Fisher-Freeman-Halton for every table.
    n_resamples : int, default=20000
        Monte Carlo tables of the Fisher-Freeman-Halton P.
    random_state : int or None, default=0
        Seed of the Monte Carlo P (the same table always gets the same P).

    Returns
    -------
    DataFrame
        Columns ``variable, level``, one column per group headed
        ``"<group> (n = N)"``, then ``statistic, p_value, test``. A
        categorical variable has a header row (empty ``level``) holding the
        test and one row per level.

    Examples
    --------
    >>> import pandas as pd
    >>> from thyronet.metrics import baseline_table
    >>> frame = pd.DataFrame({"cohort": ["train"] * 4 + ["test"] * 4,
    ...                       "age": [40, 50, 60, 45, 41, 52, 38, 61],
    ...                       "sex": ["female", "male", "female", "female",
    ...                               "male", "male", "female", "female"]})
    >>> table = baseline_table(frame)
    >>> list(table.columns)
    ['variable', 'level', 'train (n = 4)', 'test (n = 4)', 'statistic', 'p_value', 'test']
    >>> table.loc[0, "train (n = 4)"]
    '47.5 (43.8–52.5)'
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    if groupby not in frame.columns:
        raise ValueError(
            f"groupby column {groupby!r} is not in the frame; it has {list(frame.columns)}"
        )
    group_col = frame[groupby]
    missing_group = group_col.isna().to_numpy()
    if missing_group.any():
        rows = ", ".join(repr(i) for i in frame.index[missing_group][:5])
        raise ValueError(f"groupby column {groupby!r} is missing in row(s) {rows}")
    if variables is None:
        variables = _default_variables(frame, groupby)
    variables = list(variables)
    absent = [v for v in variables if v not in frame.columns]
    if absent:
        raise ValueError(
            f"variable(s) {absent} are not columns of the frame; it has {list(frame.columns)}"
        )
    if groupby in variables:
        raise ValueError(f"the groupby column {groupby!r} cannot also be a variable")
    if exact not in EXACT_MODES:
        raise ValueError(f"exact must be one of {list(EXACT_MODES)}; got {exact!r}")
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    continuous, categorical = set(continuous), set(categorical)
    both = continuous & categorical
    if both:
        raise ValueError(
            f"variable(s) {sorted(both)} are listed as both continuous and categorical"
        )
    groups = _group_order(group_col)
    masks = [(group_col == g).to_numpy() for g in groups]
    headers = [f"{g} (n = {int(m.sum())})" for g, m in zip(groups, masks, strict=True)]
    rows: list[dict] = []

    def row(variable, level, cells, statistic=np.nan, p_value=np.nan, test=""):
        out = {"variable": variable, "level": level}
        out.update(zip(headers, cells, strict=True))
        out.update(statistic=statistic, p_value=p_value, test=test)
        rows.append(out)

    for name in variables:
        column = frame[name]
        n_missing = [int(column[m].isna().sum()) for m in masks]
        if _is_continuous(column, name, continuous, categorical):
            numeric = pd.to_numeric(column, errors="coerce")
            bad = numeric.isna() & column.notna()
            if bad.any():
                where = ", ".join(repr(i) for i in frame.index[bad.to_numpy()][:5])
                raise ValueError(
                    f"continuous variable {name!r} has non-numeric values in "
                    f"row(s) {where}; pass it in categorical=[...]"
                )
            samples = [numeric[m].dropna().to_numpy(dtype=float) for m in masks]
            cells = []
            for s in samples:
                if s.size == 0:
                    cells.append("")
                    continue
                q1, med, q3 = np.percentile(s, [25, 50, 75])
                cells.append(f"{med:.{digits}f} ({q1:.{digits}f}{_DASH}{q3:.{digits}f})")
            nonempty = [s for s in samples if s.size]
            pooled = np.concatenate(nonempty) if nonempty else np.empty(0)
            if len(nonempty) >= 2 and np.ptp(pooled) > 0:
                res = stats.kruskal(*nonempty)
                statistic, p_value = float(res.statistic), float(res.pvalue)
            else:
                statistic = p_value = np.nan
            row(name, "", cells, statistic, p_value, "Kruskal-Wallis")
        else:
            values, levels = _levels(column, name)
            counts = np.array([[int((values[m] == lvl).sum()) for m in masks] for lvl in levels])
            totals = counts.sum(axis=0)
            table = counts[counts.sum(axis=1) > 0][:, totals > 0]
            if table.shape[0] >= 2 and table.shape[1] >= 2:
                statistic, p_value, test = _categorical_test(
                    table, exact, n_resamples, random_state
                )
            else:
                statistic, p_value, test = np.nan, np.nan, CHI_SQUARE
            row(name, "", [""] * len(groups), statistic, p_value, test)
            for lvl, lvl_counts in zip(levels, counts, strict=True):
                cells = [
                    f"{c} ({_fmt(100 * c / t if t else np.nan, digits)})" if t else f"{c}"
                    for c, t in zip(lvl_counts, totals, strict=True)
                ]
                row(name, lvl, cells)
        if any(n_missing):
            row(name, MISSING_LEVEL, [str(k) for k in n_missing])
    columns = ["variable", "level", *headers, "statistic", "p_value", "test"]
    return pd.DataFrame(rows, columns=columns)


_STAT_COLUMNS = ("variable", "level", "statistic", "p_value", "test")
_SUMMARY = {"Kruskal-Wallis": "median (Q1\u2013Q3)"}


def format_baseline_table(
    table: pd.DataFrame,
    *,
    group_labels: dict | None = None,
    indent: str = "    ",
    p_digits: int = 4,
) -> pd.DataFrame:
    """Table 1 in the tableone style: each variable once, its levels indented beneath.

    A continuous variable is one row, ``"<label>, median (Q1–Q3)"``, with its
    cells, P and test. A categorical one is a row ``"<label>, n (%)"`` holding its P
    and test, followed by one row per level, the level's label prefixed with
    ``indent``. Variable and level labels come from
    :data:`thyronet.schema.DISPLAY_LABELS` (:func:`thyronet.schema.display_label`).

    Parameters
    ----------
    table : DataFrame
        The output of :func:`baseline_table`.
    group_labels : dict, optional
        Display names of the groups (``{"train": "Training set"}``), the column
        headers; the group sizes are the first row, ``n``.
    indent : str, default="    "
        Prefix of a level row (the report passes non-breaking spaces).
    p_digits : int, default=4
        Decimals of ``P`` (a number, so the CSV stays machine-readable).

    Returns
    -------
    DataFrame
        Columns ``Characteristic``, one per group, ``P`` and ``Test``; the first
        row, ``n``, holds the group sizes.

    Examples
    --------
    >>> import pandas as pd
    >>> from thyronet.metrics import baseline_table, format_baseline_table
    >>> frame = pd.DataFrame({"cohort": ["train"] * 4 + ["test"] * 4,
    ...                       "ete": ["absent", "present"] * 4})
    >>> shown = format_baseline_table(baseline_table(frame))
    >>> shown["Characteristic"].tolist()
    ['n', 'Extrathyroidal extension, n (%)', '    Absent', '    Present']
    >>> list(shown.columns)
    ['Characteristic', 'train', 'test', 'P', 'Test']
    """
    missing = [c for c in _STAT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; pass the output of baseline_table")
    labels = group_labels or {}
    groups = [c for c in table.columns if c not in _STAT_COLUMNS]
    headers, sizes = {}, {}
    for column in groups:
        group, sep, rest = str(column).partition(" (n = ")
        headers[column] = str(labels.get(group, group))
        sizes[headers[column]] = rest.rstrip(")") if sep else ""
    if len(set(headers.values())) < len(headers):
        raise ValueError(f"group_labels give two groups the same name: {headers}")
    rows = [{"Characteristic": "n", **sizes, "P": np.nan, "Test": ""}]
    for _, row in table.iterrows():
        level = row["level"]
        is_level = isinstance(level, str) and level != ""
        if is_level:
            name = indent + display_label(level)
        else:
            summary = _SUMMARY.get(row["test"], "n (%)")
            name = f"{display_label(row['variable'])}, {summary}"
        p_value = pd.to_numeric(row["p_value"], errors="coerce")
        out = {"Characteristic": name}
        out.update({headers[c]: row[c] for c in groups})
        out["P"] = np.nan if is_level or pd.isna(p_value) else round(float(p_value), p_digits)
        out["Test"] = "" if is_level else row["test"]
        rows.append(out)
    return pd.DataFrame(rows, columns=["Characteristic", *headers.values(), "P", "Test"])
