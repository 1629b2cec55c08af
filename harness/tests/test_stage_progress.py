"""Progress of long steps: a bar on a terminal, plain lines with stage, elapsed time and percent
in logs; the kernel build reports its compile steps against the last full build's count."""
import io
import subprocess

from gmemharness import kbuild, stage_progress
from gmemharness.stage_progress import StageProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_in_a_log_a_line_at_start_every_interval_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    p = StageProgress("downloading linux-image", 4 * 2**20, "B", stream=out, tty=False, clock=clock)
    clock.now = 5
    p.update(2**20)                      # within the interval: no line
    clock.now = 16
    p.update(2 * 2**20)
    clock.now = 75
    p.finish()
    assert out.getvalue().splitlines() == [
        "downloading linux-image: 0s elapsed, 0%",
        "downloading linux-image: 16s elapsed, 50%, 2.0 MiB of 4.0 MiB",
        "downloading linux-image: done in 1m15s (2.0 MiB of 4.0 MiB)"]


def test_without_a_total_the_lines_say_elapsed_time_only():
    out, clock = io.StringIO(), Clock()
    p = StageProgress("unpacking linux-source-7.3.tar.xz", None, "B", stream=out, tty=False, clock=clock)
    clock.now = 20
    p.update(0)
    assert out.getvalue().splitlines()[-1] == "unpacking linux-source-7.3.tar.xz: 20s elapsed"


def test_on_a_terminal_a_bar_is_redrawn_in_place():
    out, clock = io.StringIO(), Clock()
    p = StageProgress("building linux (make bzImage)", 200, "steps", stream=out, tty=True, clock=clock)
    clock.now = 1
    p.update(100, detail="mm/guest_memfd.o")
    p.finish()
    text = out.getvalue()
    assert "\r\x1b[K" in text and "[############............]  50%" in text and "mm/guest_memfd.o" in text
    assert text.endswith("done in 1s (100 steps of 200 steps)\n")


def test_silenced_by_the_environment(monkeypatch):
    monkeypatch.setenv("GMEMTEST_PROGRESS", "0")
    out = io.StringIO()
    StageProgress("x", 1, stream=out, tty=False).finish()
    assert out.getvalue() == ""


def test_the_kernel_build_counts_steps_and_remembers_the_total(tmp_path, monkeypatch, capsys):
    make = tmp_path / "make"
    make.write_text("#!/bin/sh\nfor f in a b c; do echo \"  CC      mm/$f.o\"; done\necho '  LD      vmlinux'\n")
    make.chmod(0o755)
    monkeypatch.setattr(kbuild, "make_command", lambda tree, out, jobs, *t: [str(make)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with open(tmp_path / "log", "w") as log:
        assert kbuild._make(tmp_path, out_dir, 2, log, "bzImage") == 0
    assert (out_dir / ".gmemtest-build-steps").read_text() == "4\n"
    assert "  CC      mm/b.o" in (tmp_path / "log").read_text()
    err = capsys.readouterr().err
    assert "building " in err and "done in" in err and "(4 steps)" in err
    with open(tmp_path / "log", "w") as log:
        kbuild._make(tmp_path, out_dir, 2, log, "bzImage")
    assert "(4 steps of 4 steps)" in capsys.readouterr().err


def test_run_watched_polls_until_the_command_ends():
    out = io.StringIO()
    p = StageProgress("sleeping", 10, stream=out, tty=False)
    calls = []
    assert stage_progress.run_watched(["sleep", "0.3"], p, lambda: (calls.append(1) or len(calls), ""), poll_s=0.05) == 0
    assert calls and p.done == len(calls) and p.total == 10


def test_a_heartbeat_prints_while_the_work_is_silent(monkeypatch):
    monkeypatch.setattr(stage_progress, "LOG_EVERY_S", 0.1)
    out = io.StringIO()
    p = StageProgress("linking vmlinux", None, stream=out, tty=False, heartbeat=True)
    import time
    time.sleep(1.5)
    p.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[-1].startswith("linking vmlinux: done in")
