"""Errors that reach the user.

A :class:`UserError` is a mistake the user can fix (a bad path, a malformed file, an unknown
key). The command line prints its message on one line and exits with code 2, without a
traceback; library callers can catch it like any ``ValueError``.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(ValueError):
    """A mistake in the user's input, with a message that names the file or key and the fix."""


class InvalidRegionsError(UserError):
    """Region coordinates, labels or scores that cannot describe particles."""


class ToolUnavailableError(UserError):
    """A wrapped tool is not installed or not configured; the message says how to fix it."""


class ToolFailedError(RuntimeError):
    """A wrapped tool ran and failed; the message names its log file."""

    def __init__(self, message: str, *, log_path=None):
        super().__init__(message)
        self.log_path = log_path
