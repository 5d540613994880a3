"""The mail sink's store: one SQLite file, one row per mail, at most one per Message-ID.

A mail is committed before the SMTP server answers 250 (``synchronous=FULL``: a mail the sink
acknowledged survives a power cut). A mail whose Message-ID is already stored is acknowledged and
dropped, which is what turns a sender's re-send after a crash into a single stored mail.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from junction.ids import Snowflake
from junction.mail.parse import ParsedMail

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    message_id TEXT UNIQUE,          -- NULL for a mail without one: never de-duplicated
    created TEXT NOT NULL,
    summary TEXT NOT NULL,           -- JSON: the Mailpit summary fields
    text TEXT NOT NULL,
    html TEXT NOT NULL,
    raw BLOB NOT NULL,
    read INTEGER NOT NULL DEFAULT 0
);
"""


def now_rfc3339() -> str:
    """The wall-clock time as Mailpit prints it (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Mailbox:
    """Stored mails: add (de-duplicated), list newest first, read one, delete."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._ids = Snowflake(0)

    def open(self) -> None:
        """Create or open the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=5000"):
            db.execute(pragma)
        db.executescript(SCHEMA)
        self._db = db

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise RuntimeError(f"mailbox {self.path} is not open")
        return self._db

    def add(self, mail: ParsedMail, raw: bytes) -> dict[str, Any] | None:
        """Store a mail; its summary, or None when a mail with its Message-ID is already stored."""
        created, mail_id = now_rfc3339(), self._ids.next()
        summary = {**mail.summary, "Date": mail.summary.get("Date") or created}  # no Date header: when received
        cursor = self.db.execute(
            "INSERT INTO messages (id, message_id, created, summary, text, html, raw) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (message_id) DO NOTHING",
            (mail_id, mail.message_id, created, json.dumps(summary), mail.text, mail.html, raw))
        if cursor.rowcount == 0:
            return None
        return {"ID": mail_id, **summary, "Read": False, "Created": created}

    def listing(self, start: int = 0, limit: int = 50) -> dict[str, Any]:
        """A page of summaries, newest first, with Mailpit's counts."""
        total, unread = self.db.execute("SELECT count(*), count(*) FILTER (WHERE read = 0) FROM messages").fetchone()
        rows = self.db.execute("SELECT id, summary, created, read FROM messages ORDER BY seq DESC LIMIT ? OFFSET ?",
                               (limit, start)).fetchall()
        messages = [{"ID": r[0], **json.loads(r[1]), "Read": bool(r[3]), "Created": r[2]} for r in rows]
        return {"total": total, "unread": unread, "count": len(messages), "messages_count": total,
                "start": start, "tags": [], "messages": messages}

    def get(self, mail_id: str, mark_read: bool = True) -> dict[str, Any] | None:
        """One mail with its bodies (``latest`` is the newest), marked read; None when unknown."""
        where, args = ("ORDER BY seq DESC LIMIT 1", ()) if mail_id == "latest" else ("WHERE id = ?", (mail_id,))
        row = self.db.execute(f"SELECT id, summary, created, text, html FROM messages {where}", args).fetchone()
        if row is None:
            return None
        if mark_read:
            self.db.execute("UPDATE messages SET read = 1 WHERE id = ?", (row[0],))
        return {"ID": row[0], **json.loads(row[1]), "Read": True, "Created": row[2], "Text": row[3],
                "HTML": row[4], "Inline": [], "ReturnPath": ""}

    def raw(self, mail_id: str) -> bytes | None:
        """A mail's bytes as received."""
        row = self.db.execute("SELECT raw FROM messages WHERE id = ?", (mail_id,)).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, ids: list[str] | None = None) -> int:
        """Delete the named mails, or every mail; how many went."""
        if ids is None:
            return self.db.execute("DELETE FROM messages").rowcount
        return sum(self.db.execute("DELETE FROM messages WHERE id = ?", (i,)).rowcount for i in ids)
