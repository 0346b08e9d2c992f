"""Convert a model pickled by retain 0.1 (``model.pkl``, ``retain.pkl``) into a model folder.

    python tools/convert_pickled_model.py OLD.pkl NEW_FOLDER

This UNPICKLES the file: loading a pickle runs whatever code it holds. Run it only on a file you
or your own pipeline wrote, once, and deploy the folder it writes. retain itself never unpickles
(its loaders refuse pickles); this script lives outside the package on purpose.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from retain.models.retention import RetentionModel


def main(old: str, new: str) -> Path:
    with Path(old).open("rb") as file:
        model = pickle.load(file)  # trusted by the person running this script, see above
    if not isinstance(model, RetentionModel):
        raise SystemExit(f"{old} holds a {type(model).__name__}, not a RetentionModel")
    # Attributes added since retain 0.1, at the values that model was trained with.
    model.__dict__.setdefault("customer_features", ())
    return model.save(new)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(f"saved: {main(sys.argv[1], sys.argv[2])}")
