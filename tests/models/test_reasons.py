import numpy as np
import pandas as pd

from retain.models.reasons import churn_reasons, describe


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
    assert describe("sessions_30d", row) == "4 sessions in the last 30 days"
    assert describe("odd_feature", row) == "odd feature = 0.123"
    assert describe("gone", row) == "gone unknown"
