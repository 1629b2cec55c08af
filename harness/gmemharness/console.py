"""Scanning the guest console: kernel splats (by deny/allow regex lists, failing closed), panics,
and optional `gmemtest: start|end CASE` markers that the suite may write to /dev/kmsg."""
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InfraError

RULES_DIR = Path(__file__).parent / "splats"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TIMESTAMP = re.compile(r"^\s*(<\d+>)?\[\s*\d+\.\d+\]\s?")
_PANIC = re.compile(r"^Kernel panic - not syncing: ?(.*)")
_SPLAT_END = re.compile(r"^---\[ end (trace|Kernel panic)")
# Where a case begins and ends in the console itself, so a splat is charged to the right case
# however the two channels' bytes interleave on the host: gtest's own progress lines (the suite's
# stdout goes to the console) and `gmemtest: start|end CASE` lines the suite may write to /dev/kmsg.
_MARKER_START = re.compile(r"^(?:\[ RUN      \]|gmemtest: start) (\S+)")
_MARKER_END = re.compile(r"^(?:\[ +(?:OK|FAILED|SKIPPED) +\]|gmemtest: end) ([A-Za-z_][\w/]*\.[\w/]+)")
SPLAT_CONTEXT_LINES = 60


@dataclass(frozen=True)
class SplatRules:
    deny: tuple[re.Pattern, ...]
    allow: tuple[re.Pattern, ...]

    @classmethod
    def load(cls, deny_file: Path = RULES_DIR / "deny.txt",
             allow_file: Path = RULES_DIR / "allow.txt") -> "SplatRules":
        deny = _read_rules(deny_file)
        if not deny:
            raise InfraError(f"splat deny list {deny_file} has no rules: refusing to run a splat "
                             "check that cannot fail")
        return cls(deny=deny, allow=_read_rules(allow_file))

    def is_splat(self, line: str) -> bool:
        return any(r.search(line) for r in self.deny) and not any(r.search(line) for r in self.allow)


def _read_rules(path: Path) -> tuple[re.Pattern, ...]:
    if not path.is_file():
        raise InfraError(f"splat rule file {path} is missing: the splat check fails closed")
    rules = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            rules.append(re.compile(line))
        except re.error as e:
            raise InfraError(f"{path}:{number}: bad regex {line!r}: {e}") from None
    return tuple(rules)


@dataclass
class Splat:
    title: str
    line_number: int               # 1-based line in the console log of its boot
    context: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([self.title] + self.context)


@dataclass
class ConsoleEvent:
    kind: str                      # "splat", "panic", "marker-start", "marker-end"
    text: str                      # splat title, panic reason, or case name
    splat: Splat | None = None


class ConsoleScanner:
    """Feed console bytes as they arrive; get back splats, panics and markers in order."""

    def __init__(self, rules: SplatRules):
        self.rules = rules
        self.lines: list[str] = []
        self.splats: list[Splat] = []
        self.panic: str | None = None
        self._partial = b""
        self._open: Splat | None = None

    def feed(self, data: bytes) -> list[ConsoleEvent]:
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        return [e for raw in chunks for e in self._line(raw)]

    def finish(self) -> list[ConsoleEvent]:
        rest, self._partial = self._partial, b""
        return self._line(rest) if rest.strip() else []

    @property
    def last_line(self) -> str:
        return next((line for line in reversed(self.lines) if line.strip()), "")

    def _line(self, raw: bytes) -> list[ConsoleEvent]:
        text = _ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace").replace("\r", "").rstrip())
        line = _TIMESTAMP.sub("", text)
        self.lines.append(line)
        events: list[ConsoleEvent] = []
        panic = _PANIC.match(line)
        if panic and self.panic is None:
            self.panic = panic.group(1) or line
            events.append(ConsoleEvent("panic", self.panic))
        for kind, regex in (("marker-start", _MARKER_START), ("marker-end", _MARKER_END)):
            marker = regex.match(line)
            if marker:
                events.append(ConsoleEvent(kind, marker.group(1)))
        if self._open is not None:
            self._open.context.append(line)
            if _SPLAT_END.match(line) or len(self._open.context) >= SPLAT_CONTEXT_LINES:
                self._open = None
        elif self.rules.is_splat(line):
            self._open = Splat(title=line, line_number=len(self.lines))
            self.splats.append(self._open)
            events.append(ConsoleEvent("splat", line, self._open))
        return events
