"""The tabular library as a user meets it: a time-ordered split, a report whose numbers agree
with each other, predictions that survive unseen categories and missing values, and short
explanations in the caller's own feature names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opsloop.core.errors import InvalidInput
from opsloop.learning.tabular import (
    explain_prediction,
    predict_proba,
    time_ordered_split,
    train_tabular,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def leads(count: int = 400, *, seed: int = 7, shuffled: bool = True) -> list[dict[str, Any]]:
    """Leads whose conversion depends on visits and plan (and not on `noise`), some values
    missing, rows not in time order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        visits = float(rng.poisson(3))
        plan = str(rng.choice(["free", "pro", "team"]))
        logit = -2.5 + 0.6 * visits + {"free": -1.0, "pro": 0.8, "team": 1.5}[plan]
        rows.append(
            {
                "at": START + timedelta(hours=i),
                "visits": None if rng.random() < 0.1 else visits,
                "plan": None if rng.random() < 0.05 else plan,
                "noise": float(rng.normal()),
                "converted": bool(rng.random() < 1 / (1 + np.exp(-logit))),
            }
        )
    if shuffled:
        rows = [rows[i] for i in rng.permutation(count)]
    return rows


def test_the_split_never_tests_on_a_row_earlier_than_a_training_row() -> None:
    rows = leads(200)
    split = time_ordered_split([row["at"] for row in rows], test_fraction=0.25)
    assert len(split.test) == 50
    assert sorted(split.train + split.test) == list(range(200))
    assert max(rows[i]["at"] for i in split.train) <= min(rows[i]["at"] for i in split.test)


def test_ties_in_time_keep_the_given_order() -> None:
    split = time_ordered_split([2, 1, 2, 1, 2, 1], test_fraction=0.5)
    assert split.train == [1, 3, 5]
    assert split.test == [0, 2, 4]
    assert time_ordered_split([1, 1, 1, 1], test_fraction=0.5).test == [2, 3]


def test_a_cutoff_time_holds_out_every_row_from_then_on() -> None:
    split = time_ordered_split(["2026-03", "2026-01", "2026-02", "2026-03"], test_since="2026-03")
    assert split.train == [1, 2]
    assert split.test == [0, 3]


def test_a_row_without_a_time_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="row 1 has no time"):
        time_ordered_split([1, None, 3])


def test_the_report_describes_the_latest_rows_and_its_numbers_agree() -> None:
    rows = leads(400)
    result = train_tabular(rows, target="converted", time_key="at", test_fraction=0.25)
    report = result.report
    assert report.test.rows == 100
    assert report.train.rows == 300
    assert report.train.end <= report.test.start
    assert sum(row.count for row in report.calibration) == report.test.rows
    observed = sum(row.observed_rate * row.count for row in report.calibration)
    assert observed == pytest.approx(report.base_rate * report.test.rows)
    assert report.roc_auc > 0.75
    assert report.lift_top_10 > 1
    assert report.lift_top_20 > 1
    assert 0 < report.brier < 0.25
    assert set(report.candidates) == {"logistic_regression", "gradient_boosting"}
    # Importances name the caller's columns, not one-hot or indicator columns.
    names = [f.feature for f in report.top_features]
    assert sorted(names) == ["noise", "plan", "visits"]
    assert names[-1] == "noise"
    # JSON-ready, and readable.
    assert json.loads(json.dumps(report.to_dict()))["test"]["rows"] == 100
    text = report.to_text()
    assert "ROC AUC" in text
    assert "visits" in text


def test_a_perfect_separator_scores_an_auc_of_one() -> None:
    rows = [{"t": i, "amount": float(i % 50), "won": i % 50 >= 25} for i in range(200)]
    report = train_tabular(rows, target="won", time_key="t", algorithm="logistic_regression").report
    assert report.roc_auc == 1.0
    assert report.pr_auc == pytest.approx(1.0)
    assert report.lift_top_10 == pytest.approx(1 / report.base_rate)


@pytest.mark.parametrize("algorithm", ["logistic_regression", "gradient_boosting"])
def test_unseen_categories_and_missing_values_still_get_a_probability(algorithm: Any) -> None:
    model = train_tabular(leads(300), target="converted", time_key="at", algorithm=algorithm).model
    probabilities = predict_proba(
        model,
        [
            {"visits": 4.0, "plan": "enterprise", "noise": 0.0},  # a plan never seen
            {"visits": None, "plan": None},  # everything missing or absent
            {"visits": "n/a", "plan": "pro", "noise": 1.0},  # text where a number belongs
            {},
        ],
    )
    assert len(probabilities) == 4
    assert all(0.0 <= p <= 1.0 for p in probabilities)


def test_probabilities_rise_with_the_signal() -> None:
    model = train_tabular(leads(400), target="converted", time_key="at").model
    low, high = predict_proba(
        model,
        [
            {"visits": 0.0, "plan": "free", "noise": 0.0},
            {"visits": 8.0, "plan": "team", "noise": 0},
        ],
    )
    assert high > low + 0.5


def test_logistic_explanations_are_exact_and_name_input_features() -> None:
    model = train_tabular(
        leads(400), target="converted", time_key="at", algorithm="logistic_regression"
    ).model
    row = {"visits": 9.0, "plan": "team", "noise": 0.1}
    explained = explain_prediction(model, row, top=3)
    assert explained.method == "exact"
    assert explained.contributions[0].feature in {"visits", "plan"}
    assert explained.contributions[0].log_odds > 0
    # Additive: the contributions add up to the gap between this row and the typical one.
    logit = np.log(explained.probability / (1 - explained.probability))
    typical = np.log(explained.typical_probability / (1 - explained.typical_probability))
    total = sum(c.log_odds for c in explain_prediction(model, row, top=10).contributions)
    assert total == pytest.approx(logit - typical, abs=1e-6)
    assert json.dumps(explained.to_dict())


def test_boosting_explanations_say_they_are_approximate() -> None:
    model = train_tabular(
        leads(300), target="converted", time_key="at", algorithm="gradient_boosting"
    ).model
    explained = explain_prediction(model, {"visits": 9.0, "plan": "team", "noise": 0.0})
    assert explained.method == "approximate"
    assert len(explained.contributions) <= 3


def test_training_on_one_class_is_refused_with_a_reason() -> None:
    rows = [{"t": i, "x": float(i), "y": False} for i in range(40)]
    with pytest.raises(InvalidInput, match="at least 2 yes and 2 no"):
        train_tabular(rows, target="y", time_key="t")


def test_a_label_that_is_not_yes_or_no_is_refused_with_its_row() -> None:
    rows = [{"t": i, "x": float(i), "y": "maybe" if i == 3 else i % 2} for i in range(40)]
    with pytest.raises(InvalidInput, match="row 3"):
        train_tabular(rows, target="y", time_key="t")


def test_on_real_shoppers_data_the_latest_month_is_predicted_well(shoppers_csv: Path) -> None:
    import pandas as pd

    months = ["Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    data = pd.read_csv(shoppers_csv)
    data["month_number"] = data["Month"].map({name: n for n, name in enumerate(months)})
    features = [c for c in data.columns if c not in ("Revenue", "Month", "month_number")]
    report = train_tabular(
        data,
        target="Revenue",
        time_key="month_number",
        features=features,
        categorical=["OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType"],
        algorithm="logistic_regression",
        test_since=months.index("Dec"),
    ).report
    assert report.test.rows == 1727  # December only
    assert report.train.end == months.index("Nov")
    assert report.roc_auc > 0.85
    assert report.lift_top_10 > 4
    assert report.top_features[0].feature == "PageValues"


def test_refitting_on_all_rows_keeps_the_held_out_report() -> None:
    rows = leads(300)
    held_out = train_tabular(rows, target="converted", time_key="at", algorithm="gradient_boosting")
    refitted = train_tabular(
        rows, target="converted", time_key="at", algorithm="gradient_boosting", refit_on_all=True
    )
    assert refitted.report.roc_auc == held_out.report.roc_auc
    assert any("refitted on all rows" in note for note in refitted.report.notes)
    assert len(predict_proba(refitted.model, rows[:5])) == 5
