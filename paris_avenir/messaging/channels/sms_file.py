"""Development SMS backend: one JSON line per SMS appended to a file (nothing leaves)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from paris_avenir.db import utcnow


class FileSmsSender:
    def __init__(self, path: Path) -> None:
        self.path = path

    def send_sms(self, *, to: str, text: str, reference: str, tag: str) -> str | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "to": to,
                "text": text,
                "reference": reference,
                "tag": tag,
                "sent_at": utcnow().isoformat(),
            },
            ensure_ascii=False,
        )
        # One write of a whole line with O_APPEND: concurrent writers never interleave.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, (line + "\n").encode())
        finally:
            os.close(descriptor)
        return f"file-{reference}"

    def find_sent(self, *, to: str, reference: str) -> str | None:
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash was never a sent SMS
                if record.get("reference") == reference and record.get("to") == to:
                    return f"file-{reference}"
        return None
