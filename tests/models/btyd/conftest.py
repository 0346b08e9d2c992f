"""CDNOW sample calibration data and the four models fitted on it, shared by the BTYD tests.

The literature's setting (Fader, Hardie & Lee 2005 and the notes that followed): CDNOW_sample.txt,
2,357 customers who first bought in Q1 1997, purchases on the same day merged, calibration to
1997-09-30 (39 weeks), time in weeks. The RFM comes from the feature builder, as in `retain btyd`.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from tests.models.btyd.helpers import CALIBRATION_END, RFM, TRANSACTION_MODELS

from retain.data.datasets import Dataset
from retain.features import FeatureBuilder
from retain.models.btyd import GammaGammaModel, TransactionModel, rfm_in_unit


@pytest.fixture(scope="session")
def cdnow_transactions(cdnow_sample: Dataset) -> pd.DataFrame:
    return cdnow_sample.transactions.frame


@pytest.fixture(scope="session")
def cdnow_features(cdnow_transactions: pd.DataFrame) -> pd.DataFrame:
    return FeatureBuilder().build(cdnow_transactions, CALIBRATION_END)


@pytest.fixture(scope="session")
def cdnow_weeks(cdnow_features: pd.DataFrame) -> RFM:
    return RFM.of(rfm_in_unit(cdnow_features, "weeks"))


@pytest.fixture(scope="session")
def cdnow_days(cdnow_features: pd.DataFrame) -> RFM:
    return RFM.of(rfm_in_unit(cdnow_features, "days"))


@pytest.fixture(scope="session")
def cdnow_fitted(cdnow_weeks: RFM) -> dict[str, TransactionModel]:
    """The three transaction models fitted on the CDNOW calibration period, in weeks."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fit that does not converge fails here
        return {
            key: model(time_unit="weeks").fit(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
            for key, model in TRANSACTION_MODELS.items()
        }


@pytest.fixture(scope="session")
def cdnow_spend(cdnow_weeks: RFM) -> GammaGammaModel:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return GammaGammaModel().fit(cdnow_weeks.x, cdnow_weeks.m)
