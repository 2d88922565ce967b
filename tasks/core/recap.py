"""Change records for each (host, task) and the recap table printed at exit."""

import sys
import threading
import time
from dataclasses import dataclass, field

from .secrets import mask

OK, CHANGED, FAILED = "ok", "changed", "failed"


@dataclass
class Record:
    """What one task did on one host."""

    host: str
    task: str
    check: bool = False
    changes: list = field(default_factory=list)
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0

    @property
    def status(self):
        if self.error:
            return FAILED
        return CHANGED if self.changes else OK


class Recap:
    """Every record of a run, printed as one table when the run ends."""

    def __init__(self, stream=None):
        self.records = []
        self.stream = stream
        self.connections = 0  # SSH connections opened by this run
        self.commands = 0  # remote commands run
        self.printed = False
        self._lock = threading.Lock()

    def count(self, connections=0, commands=0):
        with self._lock:
            self.connections += connections
            self.commands += commands

    def start(self, host, task, check):
        record = Record(host, task, check)
        with self._lock:
            self.records.append(record)
        return record

    def note(self, record, line):
        """Print one line of progress for a record, secrets masked."""
        prefix = "would " if record.check else ""
        self.say(f"[{record.host}] {record.task}: {prefix}{line}")

    def say(self, line):
        self._write(mask(line))

    def _write(self, text):
        """One write per line, under the lock: print() writes the line and its end apart, so
        hosts working in parallel could share one line of output."""
        stream = self.stream or sys.stdout
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    def failed(self):
        return [r for r in self.records if r.status == FAILED]

    def table(self):
        if not self.records:
            return ""
        check = any(r.check for r in self.records)
        changed_word = "would change" if check else CHANGED
        rows = [("HOST", "TASK", "STATUS", "TIME")]
        for r in self.records:
            status = changed_word if r.status == CHANGED else r.status
            rows.append((r.host, r.task, status, f"{r.elapsed:.1f}s"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["", "RECAP" + (" (check mode: nothing was changed)" if check else "")]
        for row in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        totals = {s: sum(r.status == s for r in self.records) for s in (OK, CHANGED, FAILED)}
        lines.append(f"ok={totals[OK]} {changed_word.replace(' ', '_')}={totals[CHANGED]} failed={totals[FAILED]}")
        for r in self.failed():
            lines.append(f"failed: {r.host} {r.task}: {r.error}")
        lines.append(f"ssh: {self.connections} connection(s), {self.commands} remote command(s)")
        return mask("\n".join(lines))

    def print_table(self):
        """Print the table once: a task may print it before its last words."""
        text = self.table()
        if text and not self.printed:
            self._write(text)
            self.printed = True
