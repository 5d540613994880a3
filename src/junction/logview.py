"""Reading log files for ``junction logs``: the last lines of each, then what is appended (``-f``).

The processes write JSON lines (``junction.logs``), which are rendered as ``time level event
key=value ...``; other lines (a traceback, the PostgreSQL or Kafka server's own format) are printed
as they are. A file that shrinks (rotated or truncated) is read again from its start.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.text import Text

LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "red", "critical": "bold red"}
BLOCK = 65_536


def last_lines(path: Path, count: int) -> tuple[list[str], int]:
    """The last ``count`` complete lines of ``path`` and the offset after them, reading from the end only."""
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        data = b""
        start = end
        while start > 0 and data.count(b"\n") <= count:
            start = max(0, start - BLOCK)
            handle.seek(start)
            data = handle.read(end - start)
    complete = data[: data.rfind(b"\n") + 1]  # a line still being written is printed once it is whole
    lines = complete.decode(errors="replace").splitlines()
    return lines[-count:] if count > 0 else [], end - (len(data) - len(complete))


def render(line: str) -> Text:
    """A JSON log line as ``time level event key=value ...``; any other line as it is."""
    try:
        record = json.loads(line)
    except ValueError:
        return Text(line)
    if not isinstance(record, dict) or "event" not in record:
        return Text(line)
    record = dict(record)
    level = str(record.pop("level", "info"))
    when = str(record.pop("timestamp", ""))
    event = str(record.pop("event"))
    rest = " ".join(f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in record.items())
    text = Text(f"{when} ", style="dim")
    text.append(f"{level:<7} ", style=LEVEL_STYLES.get(level, ""))
    text.append(event, style="bold")
    if rest:
        text.append(" " + rest)
    return text


class LogView:
    """Prints several logs, each line prefixed by its log's name when there are several."""

    def __init__(self, console: Console, raw: bool = False, prefixed: bool = True) -> None:
        self.console = console
        self.raw = raw
        self.prefixed = prefixed
        self.offsets: dict[Path, int] = {}
        self.width = 0

    def show(self, files: dict[str, Path], count: int) -> None:
        """Print the last ``count`` lines of each file, and remember where each ends."""
        self.width = max((len(name) for name in files), default=0)
        for name, path in files.items():
            lines, self.offsets[path] = last_lines(path, count)
            for line in lines:
                self._print(name, line)

    def poll(self, files: dict[str, Path]) -> None:
        """Print the complete lines appended to each file since the last look (new files from their start)."""
        self.width = max(self.width, *(len(name) for name in files)) if files else self.width
        for name, path in files.items():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            offset = self.offsets.get(path, 0)
            if size < offset:  # truncated or replaced: start over
                offset = 0
            if size == offset:
                continue
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read(size - offset)
            complete = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = offset + len(complete)
            for line in complete.decode(errors="replace").splitlines():
                self._print(name, line)

    def _print(self, name: str, line: str) -> None:
        text = Text(line) if self.raw else render(line)
        if self.prefixed:
            text = Text(f"{name:<{self.width}} | ", style="cyan") + text
        self.console.print(text, soft_wrap=True, highlight=False)
