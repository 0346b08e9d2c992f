"""retain: churn, repurchase and lifetime-value prediction for e-commerce."""

import os

# LightGBM's OpenMP threads spin while they wait for work. On a machine shared with other busy
# processes (the service's workers, a second test worker, a Spark executor) the spinning threads
# take the cores the working ones need: training CDNOW took 86 s with spinning and 41 s without,
# beside one other busy process on 2 cores. Set before LightGBM is imported; a value the user set
# wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
