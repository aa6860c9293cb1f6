"""Peak resident memory of a process and its descendants, sampled from ``/proc``.

``Sampler(pid)`` reads, every 0.2 s, the root's own high-water mark (``VmHWM``), each other
process's resident set (``VmRSS``, by command name) and the tree's sum at that moment. With a
``record`` file the peaks so far are saved there every ``save_every`` seconds and read back
when the sampler starts: a benchmark killed and resumed in the same ``--keep`` folder (the
command it measures reuses its finished work) still reports the peak of every attempt.
Used by ``memory_run.py`` and ``bench_lipopose_inference.py --memory``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


def _tree(root: int) -> list[int]:
    """``root`` and its living descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Peak RSS of the root, of each other process of its tree, and of the tree summed."""

    def __init__(self, root: int, record: Path | None = None, save_every: float = 10.0):
        super().__init__(daemon=True)
        self.root = root
        self.record, self.save_every = record, save_every
        self.runner_kb = self.tree_kb = 0
        self.tools_kb: dict[str, int] = {}
        self.attempts = 1
        if record is not None and record.is_file():
            earlier = json.loads(record.read_text())
            self.runner_kb, self.tree_kb = earlier["runner_kb"], earlier["tree_kb"]
            self.tools_kb = dict(earlier["tools_kb"])
            self.attempts = earlier["attempts"] + 1
        self.done = threading.Event()

    def save(self) -> None:
        if self.record is None:
            return
        partial = self.record.with_suffix(".partial")
        partial.write_text(json.dumps({"runner_kb": self.runner_kb, "tree_kb": self.tree_kb,
                                       "tools_kb": self.tools_kb, "attempts": self.attempts}))
        partial.replace(self.record)

    def run(self) -> None:
        last_save = time.monotonic()
        while not self.done.is_set():
            if time.monotonic() - last_save >= self.save_every:
                self.save()
                last_save = time.monotonic()
            pids = _tree(self.root)
            total = 0
            for pid in pids:
                rss = _status_kb(pid, "VmRSS")
                total += rss
                if pid == self.root:
                    self.runner_kb = max(self.runner_kb, _status_kb(pid, "VmHWM"))
                elif rss:
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as handle:
                            argv = handle.read().split(b"\0")
                        name = " ".join(Path(a.decode(errors="replace")).name
                                        for a in argv[:2] if a)
                    except OSError:
                        name = str(pid)
                    self.tools_kb[name] = max(self.tools_kb.get(name, 0), rss)
            self.tree_kb = max(self.tree_kb, total)
            time.sleep(0.2)
