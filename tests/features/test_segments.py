import numpy as np
import pandas as pd
import pytest

from retain.errors import RetainInputError
from retain.features import SEGMENTS, RFMSegmenter, segment_of


def population(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "days_since_last_purchase": rng.integers(0, 400, n).astype(float),
            "frequency": rng.poisson(1.5, n).astype(float),
            "spend_total": rng.gamma(2, 50, n),
        }
    )


@pytest.mark.parametrize(
    ("r", "fm", "segment"),
    [
        (5, 5, "Champions"),
        (5, 1, "New"),
        (4, 1, "Promising"),
        (4, 2, "Potential loyalist"),
        (4, 4, "Loyal"),
        (3, 3, "Need attention"),
        (2, 3, "At risk"),
        (1, 5, "Can't lose"),
        (2, 1, "Hibernating"),
        (1, 1, "Lost"),
    ],
)
def test_grid(r: int, fm: int, segment: str) -> None:
    assert segment_of(r, fm) == segment


def test_every_grid_cell_is_a_named_segment() -> None:
    assert {segment_of(r, fm) for r in range(1, 6) for fm in range(1, 6)} == set(SEGMENTS)


def test_scores_are_quintiles_of_the_population() -> None:
    table = RFMSegmenter().fit_transform(population())
    for score in ("r_score", "f_score", "m_score"):
        assert table[score].between(1, 5).all()
    # Continuous spend splits into five near-equal groups.
    assert table["m_score"].value_counts().min() >= 95
    # Recency: the most recent buyers get 5.
    assert table.loc[table["days_since_last_purchase"].idxmin(), "r_score"] == 5
    assert table.loc[table["days_since_last_purchase"].idxmax(), "r_score"] == 1
    assert (
        table["rfm_score"] == table["r_score"] * 100 + table["f_score"] * 10 + table["m_score"]
    ).all()


def test_one_customer_is_scored_against_the_fitted_population() -> None:
    segmenter = RFMSegmenter().fit(population())
    whole = segmenter.transform(population())
    one = segmenter.transform(population().iloc[[7]])
    assert one.iloc[0]["segment"] == whole.iloc[7]["segment"]
    assert one.iloc[0]["rfm_score"] == whole.iloc[7]["rfm_score"]


def test_ties_share_the_lower_score() -> None:
    frame = population()
    frame["frequency"] = 0.0  # everybody bought once
    assert (RFMSegmenter().fit_transform(frame)["f_score"] == 1).all()


def test_transform_before_fit_and_missing_columns() -> None:
    with pytest.raises(RetainInputError, match="call fit before transform"):
        RFMSegmenter().transform(population())
    with pytest.raises(RetainInputError, match="lacks \\['spend_total'\\]"):
        RFMSegmenter().fit(population().drop(columns="spend_total"))
