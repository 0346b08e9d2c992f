"""Models: BTYD baselines and the LightGBM churn, timing and value models."""
