"""Boot one kernel under QEMU with the suite binary and collect the selected cases' results.

A thin, self-contained adapter for bisection: it builds a busybox initramfs holding the suite
binary, boots it (TCG, `-cpu max`, so /dev/kvm exists inside through emulated SVM), reads the
result stream (harness/PROTOCOL.md) from the second serial port and the console from the first.
The harness's full image/boot machinery (modules, accelerator choice, splat classification)
lives elsewhere; this file needs only a bzImage with everything built in, as kbuild.py makes.
"""
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cpio import CpioWriter
from .errors import InfraError

BUSYBOX = Path("/bin/busybox")
QEMU = "qemu-system-x86_64"
SPLAT = re.compile(r"(WARNING: CPU: \d+ PID|BUG: |Oops: |Kernel panic - not syncing|"
                   r"general protection fault|INFO: task .* blocked for more than)")
INIT_MARK = "gmemtest-init:"

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
stty -F /dev/ttyS1 raw -echo
echo "{mark} running the suite"
/gmemtest {args} --gmemtest_stream=/dev/ttyS1
echo "{mark} suite exited with $?"
reboot -f
"""


@dataclass
class CaseResult:
    name: str
    outcome: str        # pass, fail, skip, or "crash" for a case that started and never ended
    message: str = ""


@dataclass
class GuestRun:
    """What one boot produced. `status`: done (the suite finished), crash (QEMU exited or a
    splat appeared mid-run), timeout, no_boot (the suite never said hello)."""
    status: str
    cases: list[CaseResult] = field(default_factory=list)
    detail: str = ""
    boot_seconds: float | None = None
    seconds: float = 0.0


def host_tsc_khz() -> int:
    """The host TSC frequency; passed as tsc_early_khz so the guest need not calibrate its TSC
    on a loaded host (a failed calibration makes KVM refuse to create VMs)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return int(float(line.split(":")[1]) * 1000)
    raise InfraError("cannot read the host CPU frequency from /proc/cpuinfo")


def shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def build_initramfs(suite: Path, out: Path, gtest_args: list[str]) -> Path:
    """A newc initramfs with busybox, the suite binary and an init that runs it once."""
    if not BUSYBOX.is_file():
        raise InfraError(f"{BUSYBOX} is missing: install busybox-static")
    if not suite.is_file():
        raise InfraError(f"suite binary {suite} does not exist: build it first (cmake --build build)")
    init = INIT_SCRIPT.format(mark=INIT_MARK, args=" ".join(shell_quote(a) for a in gtest_args))
    with open(out, "wb") as f:
        w = CpioWriter(f)
        w.copy("bin/busybox", BUSYBOX, 0o755)
        w.copy("gmemtest", suite, 0o755)
        w.file("init", init.encode(), 0o755)
        w.close()
    return out


def qemu_command(bzimage: Path, initramfs: Path, console: Path, stream: Path,
                 memory_mb: int = 2048) -> list[str]:
    cmdline = f"console=ttyS0 panic=-1 tsc_early_khz={host_tsc_khz()} numa=fake=2"
    return [QEMU, "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", str(memory_mb),
            "-nodefaults", "-display", "none", "-no-reboot",
            "-kernel", str(bzimage), "-initrd", str(initramfs), "-append", cmdline,
            "-serial", f"file:{console}", "-serial", f"file:{stream}"]


def parse_stream(text: str) -> tuple[bool, list[CaseResult], str | None, bool]:
    """(hello seen, ended cases, case running now, done seen) from the result stream so far."""
    hello = done = False
    cases: list[CaseResult] = []
    running = None
    for line in text.replace("\r", "").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "hello":
            hello = True
        elif kind == "start":
            running = event.get("case")
        elif kind == "end":
            cases.append(CaseResult(event.get("case", "?"), event.get("outcome", "?"),
                                    event.get("message", "")))
            running = None
        elif kind == "done":
            done = True
    return hello, cases, running, done


def run(bzimage: Path, suite: Path, gtest_args: list[str], step_dir: Path,
        boot_timeout: float = 120, case_timeout: float = 120, total_timeout: float = 900) -> GuestRun:
    """Boot `bzimage` once; console.log, stream.jsonl and initramfs.cpio land in `step_dir`."""
    if not shutil.which(QEMU):
        raise InfraError(f"{QEMU} not found: install qemu-system-x86")
    step_dir.mkdir(parents=True, exist_ok=True)
    console, stream = step_dir / "console.log", step_dir / "stream.jsonl"
    initramfs = build_initramfs(suite, step_dir / "initramfs.cpio", gtest_args)
    cmd = qemu_command(bzimage, initramfs, console, stream)
    (step_dir / "qemu-command.txt").write_text(" ".join(shell_quote(c) for c in cmd) + "\n")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    result = _watch(proc, console, stream, start, boot_timeout, case_timeout, total_timeout)
    if proc.poll() is None:
        proc.kill()
    qemu_output = proc.communicate()[0].decode(errors="replace").strip()
    if qemu_output:
        (step_dir / "qemu-output.txt").write_text(qemu_output + "\n")
        if result.status == "no_boot":
            result.detail += f"; QEMU said: {qemu_output.splitlines()[-1]}"
    result.seconds = time.monotonic() - start
    return result


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _watch(proc, console: Path, stream: Path, start: float,
           boot_timeout: float, case_timeout: float, total_timeout: float) -> GuestRun:
    boot_seconds = None
    running_since, last_running = start, None
    splats_from = None      # console offset when the suite started: earlier splats are boot noise
    while True:
        exited = proc.poll() is not None
        hello, cases, running, done = parse_stream(_read(stream))
        now = time.monotonic()
        text = _read(console)
        if hello and boot_seconds is None:
            boot_seconds, splats_from = now - start, len(text)
        if running != last_running:
            running_since, last_running = now, running
        splat = SPLAT.search(text, splats_from) if splats_from is not None else None
        outcome = None
        if splat:   # before `done`: a case that WARNs and then passes still broke the kernel
            outcome = GuestRun("crash", cases, f"kernel splat: {_line_at(text, splat.start())}")
        elif done:
            outcome = GuestRun("done", cases)
        elif exited and not hello:
            outcome = GuestRun("no_boot", cases, f"QEMU exited (status {proc.returncode}) "
                               f"before the suite started; console tail: {_tail(console)}")
        elif exited:
            outcome = GuestRun("crash", cases, f"QEMU exited (status {proc.returncode}) before the "
                               f"suite finished; console tail: {_tail(console)}")
        elif not hello and now - start > boot_timeout:
            outcome = GuestRun("no_boot", cases, f"the suite did not start within {boot_timeout:.0f} s; "
                               f"console tail: {_tail(console)}")
        elif running and now - running_since > case_timeout:
            outcome = GuestRun("timeout", cases, f"case {running} ran longer than {case_timeout:.0f} s")
        elif now - start > total_timeout:
            outcome = GuestRun("timeout", cases, f"the run took longer than {total_timeout:.0f} s")
        if outcome:
            if running and outcome.status in ("crash", "timeout"):
                outcome.cases.append(CaseResult(running, outcome.status, outcome.detail))
            outcome.boot_seconds = boot_seconds
            return outcome
        time.sleep(0.2)


def _line_at(text: str, pos: int) -> str:
    end = text.find("\n", pos)
    return text[pos:end if end >= 0 else len(text)].strip()


def _tail(path: Path, n: int = 3) -> str:
    lines = [line.strip() for line in _read(path).splitlines() if line.strip()]
    return " | ".join(lines[-n:]) or "(empty)"
