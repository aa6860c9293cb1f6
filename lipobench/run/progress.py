"""The progress line of a run: tasks done, cached and failed, and one-line notes.

Imports only :mod:`lipobench.run.tasks` of this package (and rich, when a run starts).
"""

from __future__ import annotations

import sys

from lipobench.run.tasks import Status

__all__ = ["Progress"]


class Progress:
    """A rich progress bar counting tasks done, cached and failed, plus one-line notes."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._counts = {"done": 0, "cached": 0, "failed": 0}
        self._bar = None
        self._task = None

    def start(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        # Off a terminal (a log, a pipe) a bar is only its last frame printed at the end,
        # noise that would stand in front of an error line; the counts line says it all.
        self._bar = RichProgress(TextColumn("tasks"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                 console=self.console, transient=False,
                                 disable=not self.console.is_terminal)
        self._task = self._bar.add_task("tasks", total=total, status=self._status())
        self._bar.start()

    def _status(self) -> str:
        c = self._counts
        return f"done {c['done']}  cached {c['cached']}  failed {c['failed']}"

    def advance(self, label: str, outcome) -> None:
        for note in getattr(outcome, "notes", ()):
            self.note(note)
        self._counts["done"] += 1
        if outcome.cached:
            self._counts["cached"] += 1
        if outcome.status != Status.OK:
            self._counts["failed"] += 1
            self.note(f"failed {label}: {outcome.error}"
                      + (f" (log: {outcome.log_file})" if outcome.log_file else ""))
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=self._status())

    def stop(self) -> None:
        if self._bar is not None:
            if sys.exc_info()[0] is not None:
                # Ending in an error or Ctrl-C: clear the bar so the one line saying what
                # happened is all that is left on the screen.
                self._bar.live.transient = True
            self._bar.stop()
            self._bar = None

    def note(self, text: str) -> None:
        # markup=False: tool messages hold brackets such as "[tools.cryolo]".
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)
