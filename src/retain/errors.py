"""Errors that users can act on.

Every error raised for bad input is a :class:`RetainInputError`: the command line prints its message
and exits with status 2, without a traceback. Messages name the table, the column, the problem and the
number of rows affected.

"Not fitted" is one error everywhere, :class:`NotFittedError`: it is also scikit-learn's
``NotFittedError`` (so ``check_is_fitted`` callers catch it) and a :class:`RetainError`.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = ["ModelFileError", "NotFittedError", "RetainError", "RetainInputError", "check_fitted"]


class RetainError(Exception):
    """Base class of the errors retain raises on purpose."""


class RetainInputError(RetainError, ValueError):
    """The user's data or arguments are wrong in a way the user can fix."""


class NotFittedError(RetainError, _SklearnNotFittedError):
    """A model was used before ``fit`` (or before it was loaded)."""


class ModelFileError(RetainInputError):
    """A model folder is not one retain can load: missing, corrupt, an old pickle, a newer format.

    The message names the folder and the part (file) at fault.
    """


def check_fitted(estimator: object, *attributes: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has every fitted attribute named.

    scikit-learn's ``check_is_fitted`` raises its own class; retain's estimators use this one so
    that "not fitted" is one error wherever it comes from.
    """
    if not all(hasattr(estimator, name) for name in attributes):
        raise NotFittedError(
            f"{type(estimator).__name__} is not fitted: call fit() first (or load a fitted model)"
        )
