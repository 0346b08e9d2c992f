"""Errors that users can act on.

Every error raised for bad input is a :class:`RetainInputError`: the command line prints its message
and exits with status 2, without a traceback. Messages name the table, the column, the problem and the
number of rows affected.
"""

from __future__ import annotations

__all__ = ["RetainError", "RetainInputError"]


class RetainError(Exception):
    """Base class of the errors retain raises on purpose."""


class RetainInputError(RetainError, ValueError):
    """The user's data or arguments are wrong in a way the user can fix."""
