"""retain: churn, repurchase and lifetime-value prediction for e-commerce."""

__version__ = "0.1.0"
