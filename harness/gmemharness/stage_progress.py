"""Progress of long steps (building a kernel, downloading packages, unpacking sources) on stderr:
a bar redrawn in place on a terminal; in CI logs (not a tty) a plain line at the start, every
LOG_EVERY_S seconds and at the end, each with the stage, the elapsed time and the percent where
the total is known. GMEMTEST_PROGRESS=0 silences it."""
import os
import subprocess
import sys
import threading
import time
from typing import Callable

LOG_EVERY_S = 15.0
REDRAW_S = 0.2
BAR = 24


class StageProgress:
    def __init__(self, stage: str, total: float | None = None, unit: str = "", stream=None,
                 tty: bool | None = None, clock: Callable[[], float] = time.monotonic,
                 heartbeat: bool = False):
        self.stage, self.total, self.unit = stage, total, unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = os.environ.get("GMEMTEST_PROGRESS") == "0"
        self.clock = clock
        self.t0 = clock()
        self.done: float = 0
        self.detail = ""
        self._last_print = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._print(force=True)
        if heartbeat:   # a line (or a redraw) even while the work prints nothing
            threading.Thread(target=self._beat, daemon=True).start()

    def _beat(self) -> None:
        while not self._stopped.wait(REDRAW_S if self.tty else 1.0):
            self._print()

    def __enter__(self) -> "StageProgress":
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.finish("failed" if kind else "done")

    def percent(self) -> int | None:
        if not self.total:
            return None
        return min(99, int(100 * self.done / self.total))   # 100 only once finished

    def update(self, done: float, total: float | None = None, detail: str = "") -> None:
        self.done, self.detail = done, detail
        if total is not None:
            self.total = total
        self._print()

    def finish(self, outcome: str = "done") -> None:
        self._stopped.set()
        if self.quiet:
            return
        line = f"{self.stage}: {outcome} in {self._elapsed()}" + (f" ({self._amount()})" if self.done else "")
        self._emit(line, final=True)

    def _elapsed(self) -> str:
        s = int(self.clock() - self.t0)
        return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"

    def _amount(self) -> str:
        fmt = _size if self.unit == "B" else lambda n: f"{int(n)}{(' ' + self.unit) if self.unit else ''}"
        return fmt(self.done) + (f" of {fmt(self.total)}" if self.total else "")

    def _print(self, force: bool = False) -> None:
        if self.quiet or (self._stopped.is_set() and not force):
            return
        with self._lock:
            self._print_locked(force)

    def _print_locked(self, force: bool) -> None:
        now = self.clock()
        every = REDRAW_S if self.tty else LOG_EVERY_S
        if not force and self._last_print is not None and now - self._last_print < every:
            return
        self._last_print = now
        pct = self.percent()
        if self.tty:
            fill = int(BAR * (pct or 0) / 100)
            bar = f"[{'#' * fill}{'.' * (BAR - fill)}] {pct:3d}%" if pct is not None else "[working]"
            detail = f" {self.detail[-40:]}" if self.detail else ""
            self._emit(f"{self.stage}: {bar} {self._elapsed()} {self._amount() if self.done else ''}{detail}")
        else:
            pct_text = f", {pct}%" if pct is not None else ""
            amount = f", {self._amount()}" if self.done else ""
            self._emit(f"{self.stage}: {self._elapsed()} elapsed{pct_text}{amount}")

    def _emit(self, line: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run_watched(cmd: list[str], progress: StageProgress, poll: Callable[[], tuple[float, str]] | None = None,
                poll_s: float = 0.5, **popen) -> int:
    """Run `cmd` to its end, updating `progress` from poll() -> (done, detail) meanwhile."""
    proc = subprocess.Popen(cmd, **popen)
    while proc.poll() is None:
        time.sleep(poll_s)
        if poll:
            done, detail = poll()
            progress.update(done, detail=detail)
        else:
            progress.update(progress.done)
    return proc.returncode


def tree_bytes(path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
