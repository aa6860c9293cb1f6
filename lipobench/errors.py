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


EXIT_INTERRUPTED = 130


class Interrupted(BaseException):
    """The user pressed Ctrl-C (SIGINT); the message says what finished and how to resume.

    A BaseException and not a KeyboardInterrupt: tools and libraries that catch
    KeyboardInterrupt (or Exception) and turn it into their own error never see it, so an
    interrupt is never recorded as a failed configuration.
    """


_interrupt_requested = False


def request_interrupt() -> None:
    """Note that the user asked to stop (called by the command line's SIGINT handler)."""
    global _interrupt_requested
    _interrupt_requested = True


def clear_interrupt() -> None:
    global _interrupt_requested
    _interrupt_requested = False


def interrupt_requested() -> bool:
    """Whether Ctrl-C was pressed: a task failing after it failed because of it."""
    return _interrupt_requested


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if Ctrl-C was pressed: a safe point between units of work.

    The SIGINT handler raises at once where it can, but an exception raised inside a
    library's C++ callback is lost or aborts the process, so the handler only takes note
    there, and the runner and adapters look here between tasks, images and diameters.
    """
    if _interrupt_requested:
        raise Interrupted("interrupted")
