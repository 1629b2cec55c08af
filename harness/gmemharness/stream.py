"""Incremental parser for the suite's result stream (harness/PROTOCOL.md): JSON objects, one per
line. The guest's /init adds events named harness-* (boot, nokvm, exit)."""
import json
from dataclasses import dataclass, field


@dataclass
class StreamParser:
    events: list[dict] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)   # lines that were not protocol JSON
    _partial: bytes = b""

    def feed(self, data: bytes) -> list[dict]:
        """Parse whatever complete lines `data` finishes; return the new events."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        new = [e for e in (self._parse(line) for line in lines) if e is not None]
        self.events += new
        return new

    def finish(self) -> list[dict]:
        """The guest is gone: a last line without its newline still counts if it parses."""
        rest, self._partial = self._partial, b""
        event = self._parse(rest) if rest.strip() else None
        if event is not None:
            self.events.append(event)
        return [event] if event is not None else []

    def _parse(self, raw: bytes) -> dict | None:
        # A serial line can carry NULs (port reset) and a \r (line discipline): strip() takes the \r.
        text = raw.replace(b"\0", b"").decode("utf-8", errors="replace").strip()
        if not text:
            return None
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            self.garbage.append(text)
            return None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            self.garbage.append(text)
            return None
        return event
