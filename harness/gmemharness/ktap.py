"""A strict reader of KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst), for checking
what gmemtest --ktap and reports.ktap() write. Stricter than the format: the version line must be
"KTAP version 1", every (sub)test document has a plan, no unknown lines, results numbered from 1
without gaps and as many as planned, only known directives (TIMEOUT and ERROR on "not ok"), and a
parent that reports "ok" may not have a failed subtest.

    /usr/bin/python3 -m gmemharness.ktap FILE [--expect-exit CODE]   # exit 0 when FILE is valid
"""
import argparse
import re
import sys
from dataclasses import dataclass, field

VERSION = "KTAP version 1"
INDENT = "  "
DIRECTIVES = ("SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR")
_PLAN = re.compile(r"1\.\.(\d+)")
_RESULT = re.compile(r"(ok|not ok) (\d+)(?: ([^#]*?))?(?: # ?(.*))?")
# kselftest exit codes (KSFT_PASS, KSFT_FAIL, KSFT_SKIP)
EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 4


class KtapError(ValueError):
    def __init__(self, line_number: int, message: str):
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number


@dataclass
class Result:
    ok: bool
    number: int
    description: str
    directive: str | None = None
    reason: str = ""
    diagnostics: list[str] = field(default_factory=list)   # "# " lines just before the result
    subtests: "Document | None" = None

    @property
    def skipped(self) -> bool:
        return self.directive == "SKIP"

    @property
    def failed(self) -> bool:
        return not self.ok and not self.skipped and self.directive not in ("TODO", "XFAIL")


@dataclass
class Document:
    plan: int
    results: list[Result]
    header: list[str] = field(default_factory=list)      # diagnostics between version and plan
    trailer: list[str] = field(default_factory=list)     # diagnostics after the last result


def parse(text: str) -> Document:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    reader = _Reader(lines)
    doc = reader.document(0)
    if reader.pos != len(lines):
        raise KtapError(reader.pos + 1, f"trailing line after the last planned result: {lines[reader.pos]!r}")
    return doc


def exit_code(doc: Document) -> int:
    """What kselftest expects a program with this top-level result list to exit with."""
    if any(r.failed for r in doc.results):
        return EXIT_FAIL
    if doc.results and all(r.skipped for r in doc.results):
        return EXIT_SKIP
    return EXIT_PASS


class _Reader:
    def __init__(self, lines: list[str]):
        self.lines = lines
        self.pos = 0

    def _peek(self) -> str | None:
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def _fail(self, message: str) -> KtapError:
        return KtapError(self.pos + 1, message)

    def _strip(self, line: str, depth: int) -> str | None:
        """The line's content at `depth`, or None when it is indented less."""
        prefix = INDENT * depth
        if not line.startswith(prefix):
            return None
        rest = line[len(prefix):]
        if rest.startswith(" "):
            return "\0" + rest   # deeper: only a nested version line may start there
        return rest

    def document(self, depth: int) -> Document:
        line = self._peek()
        if line is None or self._strip(line, depth) != VERSION:
            raise self._fail(f"expected {INDENT * depth + VERSION!r}, got {line!r}")
        self.pos += 1
        header = self._diagnostics(depth)
        content = self._strip(self._peek() or "", depth) if self._peek() is not None else None
        plan = _PLAN.fullmatch(content or "")
        if not plan:
            raise self._fail(f"expected the plan '1..N' after the version line, got {self._peek()!r}")
        self.pos += 1
        doc = Document(int(plan.group(1)), [], header)
        while len(doc.results) < doc.plan:
            doc.results.append(self._result(depth, len(doc.results) + 1))
        doc.trailer = self._diagnostics(depth)   # e.g. totals, or why a parent failed
        return doc

    def _diagnostics(self, depth: int) -> list[str]:
        out = []
        while (line := self._peek()) is not None:
            content = self._strip(line, depth)
            if content is None or not (content == "#" or content.startswith("# ")):
                break
            out.append(content[2:])
            self.pos += 1
        return out

    def _result(self, depth: int, number: int) -> Result:
        diagnostics = self._diagnostics(depth)
        subtests = None
        line = self._peek()
        if line is not None and self._strip(line, depth + 1) == VERSION:
            subtests = self.document(depth + 1)
            diagnostics += self._diagnostics(depth)
            line = self._peek()
        if line is None:
            raise self._fail(f"the plan promises {number} or more results; the output ends")
        content = self._strip(line, depth)
        m = _RESULT.fullmatch(content or "")
        if not m:
            raise self._fail(f"expected result line {number} at indent {depth}, got {line!r}")
        ok, got, description, tail = m.group(1) == "ok", int(m.group(2)), m.group(3) or "", m.group(4)
        if got != number:
            raise self._fail(f"result numbered {got}, expected {number}")
        directive, reason = None, ""
        if tail is not None:
            word, _, rest = tail.partition(" ")
            if word in DIRECTIVES:
                directive, reason = word, rest
            elif word.upper() in DIRECTIVES:
                raise self._fail(f"directive {word!r} must be upper case")
            else:
                reason = tail
        if directive in ("TIMEOUT", "ERROR") and ok:
            raise self._fail(f"{directive} on an 'ok' result")
        if subtests and ok and directive is None and any(r.failed for r in subtests.results):
            raise self._fail(f"'ok {number} {description}' although a subtest failed")
        self.pos += 1
        return Result(ok, number, description.strip(), directive, reason, diagnostics, subtests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gmemharness.ktap", description="check strict KTAP v1")
    parser.add_argument("file", help="KTAP text (- for stdin)")
    parser.add_argument("--expect-exit", type=int, help="also check the producer's exit code matches")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    try:
        doc = parse(text)
    except KtapError as e:
        print(f"{args.file}: not strict KTAP v1: {e}", file=sys.stderr)
        return 1
    if args.expect_exit is not None and exit_code(doc) != args.expect_exit:
        print(f"{args.file}: results call for exit {exit_code(doc)}, producer exited {args.expect_exit}",
              file=sys.stderr)
        return 1
    counts = {k: sum(1 for r in doc.results if getattr(r, k)) for k in ("failed", "skipped")}
    print(f"{args.file}: strict KTAP v1, {len(doc.results)} results, {counts['failed']} failed, "
          f"{counts['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
