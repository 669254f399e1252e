"""baseline_table: the paper's Table 1 (median (IQR) + Kruskal-Wallis, n (%) + chi-square)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from thyronet.datasets import CLINICAL_COLUMNS, CLINICAL_VARIABLES
from thyronet.metrics import baseline_table

# Counts per level (train, validation, test) of the paper's Table 1, schema category order,
# with the paper's chi-square statistics and P values.
PAPER_COUNTS = {
    "sex": ({"female": (196, 90, 59), "male": (69, 24, 23)}, 1.493, 0.474),
    "location": (
        {
            "upper": (33, 15, 22),
            "middle": (146, 58, 38),
            "lower": (57, 29, 20),
            "isthmus": (29, 12, 2),
        },
        15.632,
        0.016,
    ),
    "ete": ({"absent": (226, 102, 77), "present": (39, 12, 5)}, 4.733, 0.094),
    "echogenicity": (
        {
            "hyper_isoechoic": (11, 8, 5),
            "hypoechoic": (200, 75, 59),
            "markedly_hypoechoic": (54, 31, 18),
        },
        4.110,
        0.391,
    ),
    "margin": ({"clear": (113, 53, 29), "unclear": (152, 61, 53)}, 2.449, 0.294),
    "shape": ({"regular": (115, 47, 24), "irregular": (150, 67, 58)}, 5.242, 0.073),
    "vascularity": (
        {"I": (95, 38, 24), "II": (21, 9, 12), "III": (140, 63, 41), "IV": (9, 4, 5)},
        5.642,
        0.465,
    ),
    "calcification": (
        {
            "absent": (123, 58, 41),
            "micro": (100, 38, 25),
            "coarse": (25, 13, 10),
            "mixed": (17, 5, 6),
        },
        2.902,
        0.821,
    ),
    "capsular_contact": ({"absent": (97, 41, 32), "present": (168, 73, 50)}, 0.212, 0.900),
    "discontinuous_capsule": ({"absent": (186, 83, 56), "present": (79, 31, 26)}, 0.496, 0.780),
}
SIZES = {"train": 265, "validation": 114, "test": 82}


@pytest.fixture(scope="module")
def paper_cohort() -> pd.DataFrame:
    """A cohort with the paper's Table 1 category counts (rows shuffled within a group)."""
    rng = np.random.default_rng(0)
    columns: dict[str, list] = {
        "cohort": [],
        "clnm": [],
        "patient_id": [],
        "longitudinal": [],
        "transverse": [],
    }
    for g, n in SIZES.items():
        columns["cohort"] += [g] * n
        columns["clnm"] += list(rng.integers(0, 2, n))
    total = sum(SIZES.values())
    columns["patient_id"] = [f"p{i}" for i in range(total)]
    columns["longitudinal"] = [f"img/{i}_l.png" for i in range(total)]
    columns["transverse"] = [f"img/{i}_t.png" for i in range(total)]
    for name, (levels, _, _) in PAPER_COUNTS.items():
        values = []
        for k in range(len(SIZES)):
            cell = [lvl for lvl, counts in levels.items() for _ in range(counts[k])]
            values += list(rng.permutation(cell))
        columns[name] = values
    columns["age"] = list(np.round(rng.normal(45, 11, total)))
    columns["size"] = list(np.round(rng.uniform(2, 10, total), 1))
    columns["aspect_ratio"] = list(np.round(rng.normal(1.1, 0.2, total), 2))
    # shuffle rows so that the groups are interleaved
    return pd.DataFrame(columns).sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_reproduces_the_papers_chi_square_statistics(paper_cohort):
    table = baseline_table(paper_cohort, exact="never")  # the paper used chi-square throughout
    headers = ["train (n = 265)", "validation (n = 114)", "test (n = 82)"]
    assert list(table.columns) == ["variable", "level", *headers, "statistic", "p_value", "test"]
    assert list(dict.fromkeys(table["variable"])) == list(CLINICAL_COLUMNS)
    for name, (levels, statistic, p_value) in PAPER_COUNTS.items():
        rows = table[table["variable"] == name]
        header = rows.iloc[0]
        assert header["level"] == "" and header["test"] == "chi-square"
        assert header["statistic"] == pytest.approx(statistic, abs=1.5e-3)
        assert header["p_value"] == pytest.approx(p_value, abs=1.5e-3)
        # one row per level, in schema order, with n (%)
        assert rows["level"].tolist()[1:] == list(levels)
        for lvl, counts in levels.items():
            row = rows[rows["level"] == lvl].iloc[0]
            for h, c, n in zip(headers, counts, SIZES.values(), strict=True):
                assert row[h] == f"{c} ({100 * c / n:.1f})"
    male = table[(table["variable"] == "sex") & (table["level"] == "male")].iloc[0]
    assert male["train (n = 265)"] == "69 (26.0)"


def test_continuous_rows_median_iqr_and_kruskal(paper_cohort):
    table = baseline_table(paper_cohort, digits=2)
    row = table[table["variable"] == "age"].iloc[0]
    assert row["test"] == "Kruskal-Wallis" and row["level"] == ""
    groups = [paper_cohort.loc[paper_cohort["cohort"] == g, "age"] for g in SIZES]
    ref = stats.kruskal(*groups)
    assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    q1, med, q3 = np.percentile(groups[1], [25, 50, 75])
    assert row["validation (n = 114)"] == f"{med:.2f} ({q1:.2f}\u2013{q3:.2f})"


def test_kruskal_statistic_by_hand_without_ties():
    frame = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 3 + ["c"] * 2, "x": [1.0, 5, 2, 8, 7, 3, 4, 6]})
    table = baseline_table(frame, groupby="g")
    ranks = {"a": [1, 5, 2], "b": [8, 7, 3], "c": [4, 6]}  # values equal their ranks
    n = 8
    h = 12 / (n * (n + 1)) * sum(sum(r) ** 2 / len(r) for r in ranks.values()) - 3 * (n + 1)
    assert table.loc[0, "statistic"] == pytest.approx(h, rel=1e-12)
    assert table.loc[0, "p_value"] == pytest.approx(stats.chi2.sf(h, 2), rel=1e-12)
    assert table.loc[0, "a (n = 3)"] == "2.0 (1.5\u20133.5)"


def test_two_by_two_chi_square_has_no_yates_correction():
    frame = pd.DataFrame(
        {
            "arm": ["x"] * 20 + ["y"] * 20,
            "smoker": [True] * 12 + [False] * 8 + [True] * 5 + [False] * 15,
        }
    )
    table = baseline_table(frame, groupby="arm")
    a, b, c, d = 12, 8, 5, 15  # x: yes/no, y: yes/no
    pearson = 40 * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    assert table.loc[0, "statistic"] == pytest.approx(pearson, rel=1e-12)
    assert table["level"].tolist() == ["", "False", "True"]  # booleans are categorical
    assert table.loc[2, "x (n = 20)"] == "12 (60.0)"


def test_any_frame_kinds_order_and_overrides():
    frame = pd.DataFrame(
        {
            "site": pd.Categorical(["north", "south"] * 6, categories=["south", "north"]),
            "grade": pd.Categorical(["low", "high", "mid"] * 4, categories=["low", "mid", "high"]),
            "score": np.arange(12.0),
            "stage": [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3],
            "label": list("abcabcabcabc"),
        }
    )
    table = baseline_table(frame, groupby="site", categorical=["stage"], exact="never")
    assert [c for c in table.columns if "(n =" in c] == ["south (n = 6)", "north (n = 6)"]
    kinds = table[table["level"] == ""].set_index("variable")["test"]
    assert kinds.to_dict() == {
        "grade": "chi-square",
        "score": "Kruskal-Wallis",
        "stage": "chi-square",
        "label": "chi-square",
    }
    assert table[table["variable"] == "grade"]["level"].tolist() == ["", "low", "mid", "high"]
    assert table[table["variable"] == "stage"]["level"].tolist() == ["", "1", "2", "3"]
    only = baseline_table(frame, groupby="site", variables=["score"], continuous=["score"])
    assert only["variable"].tolist() == ["score"]


def test_missing_values_are_counted_and_left_out():
    frame = pd.DataFrame(
        {
            "cohort": ["train"] * 4 + ["test"] * 4,
            "age": [40, np.nan, 60, 45, 41, 52, 38, 61],
            "sex": ["female", "male", None, "female", "male", "male", "female", "female"],
        }
    )
    table = baseline_table(frame, exact="never")
    assert table.columns[2:4].tolist() == ["train (n = 4)", "test (n = 4)"]
    age = table[table["variable"] == "age"]
    assert age["level"].tolist() == ["", "(missing)"]
    assert age.iloc[1]["train (n = 4)"] == "1"
    assert age.iloc[0]["train (n = 4)"] == "45.0 (42.5\u201352.5)"
    sex = table[table["variable"] == "sex"].set_index("level")
    # schema order for a clinical indicator, % of the non-missing values
    assert sex.index.tolist() == ["", "female", "male", "(missing)"]
    assert sex.loc["female", "train (n = 4)"] == "2 (66.7)"
    expected = stats.chi2_contingency([[2, 2], [1, 2]], correction=False).statistic
    assert sex.loc["", "statistic"] == pytest.approx(expected, rel=1e-12)


def test_schema_levels_with_no_subjects_are_shown_and_left_out_of_the_test():
    frame = pd.DataFrame(
        {
            "cohort": ["train", "train", "test", "test", "test"],
            "location": ["Upper", "middle", "upper", "middle", "middle"],
        }
    )
    table = baseline_table(frame, exact="never").set_index("level")
    assert table.index.tolist() == ["", "upper", "middle", "lower", "isthmus"]
    assert table.loc["isthmus", "train (n = 2)"] == "0 (0.0)"
    expected = stats.chi2_contingency([[1, 1], [1, 2]], correction=False).statistic
    assert table.loc["", "statistic"] == pytest.approx(expected, rel=1e-12)


def test_untestable_variables_give_nan():
    frame = pd.DataFrame({"g": ["a", "a", "b", "b"], "x": [1.0, 1, 1, 1], "c": ["u"] * 4})
    table = baseline_table(frame, groupby="g")
    assert table.loc[table["level"] == "", "statistic"].isna().all()
    single = baseline_table(frame.assign(g="a"), groupby="g")
    assert single["p_value"].isna().all()


def test_input_frame_is_not_modified(paper_cohort):
    before = paper_cohort.copy()
    baseline_table(paper_cohort)
    pd.testing.assert_frame_equal(paper_cohort, before)


def test_bad_input():
    frame = pd.DataFrame({"cohort": ["train", None], "age": [1.0, 2.0], "tag": ["a", "b"]})
    with pytest.raises(ValueError, match=r"groupby column 'cohort' is missing in row\(s\) 1"):
        baseline_table(frame)
    with pytest.raises(ValueError, match="groupby column 'arm' is not in the frame"):
        baseline_table(frame, groupby="arm")
    ok = frame.fillna("test")
    with pytest.raises(ValueError, match=r"variable\(s\) \['bmi'\] are not columns"):
        baseline_table(ok, variables=["bmi"])
    with pytest.raises(ValueError, match="both continuous and categorical"):
        baseline_table(ok, continuous=["age"], categorical=["age"])
    with pytest.raises(ValueError, match="continuous variable 'tag' has non-numeric values"):
        baseline_table(ok, continuous=["tag"])
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        baseline_table(ok.to_numpy())
    assert len(CLINICAL_VARIABLES) == 13


def test_sparse_tables_get_exact_tests(paper_cohort):
    table = baseline_table(paper_cohort)
    header = table[table["level"] == ""].set_index("variable")
    for name, (levels, _, _) in PAPER_COUNTS.items():
        counts = np.array(list(levels.values()))
        counts = counts[counts.sum(axis=1) > 0]
        sparse = stats.chi2_contingency(counts).expected_freq.min() < 5
        row = header.loc[name]
        if not sparse:  # every expected count >= 5: chi-square as before
            assert row["test"] == "chi-square"
            continue
        assert row["test"] == "Fisher-Freeman-Halton (Monte Carlo)" and np.isnan(row["statistic"])
        method = stats.MonteCarloMethod(n_resamples=20_000, rng=np.random.default_rng(0))
        assert row["p_value"] == stats.fisher_exact(counts, method=method).pvalue
    # echogenicity, vascularity and calcification have an expected count < 5
    assert (header["test"] == "Fisher-Freeman-Halton (Monte Carlo)").sum() == 3


def test_two_by_two_sparse_table_gets_fishers_exact_test():
    frame = pd.DataFrame(
        {"arm": ["x"] * 10 + ["y"] * 10, "event": [1] * 6 + [0] * 4 + [1] * 1 + [0] * 9}
    )
    table = baseline_table(frame, groupby="arm", categorical=["event"])
    assert table.loc[0, "test"] == "Fisher's exact" and np.isnan(table.loc[0, "statistic"])
    expected = stats.fisher_exact([[4, 9], [6, 1]]).pvalue  # levels 0, 1 x arms x, y
    assert table.loc[0, "p_value"] == pytest.approx(expected, rel=1e-12)
    chi = baseline_table(frame, groupby="arm", categorical=["event"], exact="never")
    assert chi.loc[0, "test"] == "chi-square"
    assert chi.loc[0, "statistic"] == pytest.approx(
        stats.chi2_contingency([[4, 9], [6, 1]], correction=False).statistic, rel=1e-12
    )


def test_exact_always_and_seeded_monte_carlo():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"g": rng.choice(["a", "b", "c"], 300), "level": rng.choice(["u", "v", "w"], 300)}
    )
    auto = baseline_table(frame, groupby="g")
    assert auto.loc[0, "test"] == "chi-square"  # large expected counts
    one = baseline_table(frame, groupby="g", exact="always", n_resamples=2000, random_state=5)
    two = baseline_table(frame, groupby="g", exact="always", n_resamples=2000, random_state=5)
    assert one.loc[0, "test"] == "Fisher-Freeman-Halton (Monte Carlo)"
    assert one.loc[0, "p_value"] == two.loc[0, "p_value"]
    assert abs(one.loc[0, "p_value"] - auto.loc[0, "p_value"]) < 0.05  # same hypothesis
    with pytest.raises(ValueError, match="exact must be one of"):
        baseline_table(frame, groupby="g", exact="yes")
    with pytest.raises(ValueError, match="n_resamples"):
        baseline_table(frame, groupby="g", n_resamples=0)


def test_format_baseline_table_is_tableone_style():
    from thyronet.metrics import format_baseline_table
    from thyronet.schema import CLINICAL_VARIABLES, DISPLAY_LABELS, display_label

    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame(
        {
            "cohort": np.repeat(["train", "validation", "test"], n // 3),
            "age": rng.normal(45, 10, n),
            "ete": rng.choice(["absent", "present"], n),
            "echogenicity": rng.choice(["hyper_isoechoic", "hypoechoic"], n),
        }
    )
    frame.loc[3, "ete"] = np.nan
    long = baseline_table(frame, variables=["age", "ete", "echogenicity"])
    shown = format_baseline_table(
        long, group_labels={"validation": "Validation (tuning cohort)"}, indent=".."
    )
    assert list(shown.columns) == [
        "Characteristic",
        "train",
        "Validation (tuning cohort)",
        "test",
        "P",
        "Test",
    ]
    assert shown["Characteristic"].tolist() == [
        "n",
        "Age, years, median (Q1\u2013Q3)",
        "Extrathyroidal extension, n (%)",
        "..Absent",
        "..Present",
        "..Missing",
        "Echogenicity, n (%)",
        "..Hyper-/isoechoic",
        "..Hypoechoic",
        "..Markedly hypoechoic",
    ]
    assert shown.iloc[0, 1:4].tolist() == ["30", "30", "30"]
    # each variable once with its P and test; level rows carry neither
    headers = long[long["level"] == ""]
    np.testing.assert_allclose(
        shown.loc[shown["Test"] != "", "P"], headers["p_value"].round(4), equal_nan=True
    )
    assert shown.loc[shown["Test"] != "", "Test"].tolist() == headers["test"].tolist()
    levels = shown["Characteristic"].str.startswith("..")
    assert shown.loc[levels, "P"].isna().all() and (shown.loc[levels, "Test"] == "").all()
    # one mapping labels every clinical column and level
    for var in CLINICAL_VARIABLES:
        assert var.name in DISPLAY_LABELS
        assert all(c in DISPLAY_LABELS for c in var.categories)
    assert display_label("p_value") == "P" and display_label("new_column") == "New column"
    with pytest.raises(ValueError, match="baseline_table"):
        format_baseline_table(long.drop(columns="test"))
