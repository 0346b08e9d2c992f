"""Shared fixtures: real data sets are loaded once per test session."""

from __future__ import annotations

import pytest

from retain.data.datasets import Dataset, load_cdnow


@pytest.fixture(scope="session")
def cdnow_master() -> Dataset:
    return load_cdnow("master")


@pytest.fixture(scope="session")
def cdnow_sample() -> Dataset:
    return load_cdnow("sample")
