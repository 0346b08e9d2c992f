import numpy as np
import pandas as pd

from retain.models.reasons import churn_reasons, describe, speakable


def test_reasons_quote_the_customers_own_values() -> None:
    table = pd.DataFrame(
        {
            "days_since_last_purchase": [143.0, 5.0],
            "overdue_ratio": [3.1, 0.2],
            "frequency": [1.0, 9.0],
        }
    )
    contributions = pd.DataFrame(
        {
            "days_since_last_purchase": [1.2, -0.8],
            "overdue_ratio": [0.9, -0.5],
            "frequency": [0.3, -0.2],
            "bias": [0.1, 0.1],
        }
    )
    reasons = churn_reasons(contributions, table, n_reasons=3)
    # Recency and the overdue ratio say the same thing: said once, strongest first.
    assert reasons[0] == [
        "no order for 143 days, 3.1x their usual gap",
        "1 repeat purchase day so far",
    ]
    # Nothing raises the second customer's risk: the strongest features lowering it, marked so.
    assert reasons[1][0] == "no order for 5 days, 0.2x their usual gap (lowers risk)"
    assert len(reasons[1]) == len(set(reasons[1])) == 2


def test_describe_falls_back_to_name_and_value() -> None:
    row = pd.Series({"sessions_30d": 4.0, "odd_feature": 0.1234, "gone": np.nan})
    assert describe("sessions_30d", row) == "4 visits in the last 30 days"
    assert describe("odd_feature", row) == "odd feature = 0.123"
    assert describe("gone", row) == "gone unknown"


def test_only_speakable_features_become_reasons() -> None:
    """Unknown values, features without words and a high P(alive) are never given as reasons:
    the next features that raise the risk are, in their order."""
    table = pd.DataFrame(
        {
            "ipt_std": [np.nan],
            "odd_feature": [0.5],
            "btyd_p_alive": [1.0],
            "spend_90d": [0.0],
            "days_since_last_purchase": [200.0],
            "overdue_ratio": [np.nan],
        }
    )
    contributions = pd.DataFrame(
        {
            "ipt_std": [2.0],
            "odd_feature": [1.5],
            "btyd_p_alive": [1.2],
            "spend_90d": [0.8],
            "days_since_last_purchase": [0.4],
            "overdue_ratio": [0.3],
            "bias": [0.0],
        }
    )
    assert churn_reasons(contributions, table, n_reasons=2) == [
        ["spent 0.00 in the last 90 days", "no order for 200 days"]
    ]
    row = table.iloc[0]
    assert speakable("btyd_p_alive", row) is None
    assert speakable("btyd_p_alive", pd.Series({"btyd_p_alive": 0.2})) == (
        "BG/NBD gives a 20% chance they are still active"
    )
    assert speakable("ipt_std", row) is None and speakable("odd_feature", row) is None
