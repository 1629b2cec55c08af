"""Running any program (e.g. the benchmarks, build/bench/gmemtest_bench) once inside a kernel and
collecting what it writes to the result port. No per-case protocol: the program's output is
returned as text, with its exit status from the guest's /init.

    run_program(kernel, Path("build/bench/gmemtest_bench"),
                ["--benchmark_out={port}", "--benchmark_out_format=json"], out_dir)

`{port}` in an argument becomes the guest's result port (/dev/ttyS1); the program's stdout and
stderr go to the console log."""
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import guest, image, numa, qemu
from .errors import InfraError
from .kernelsource import KernelSource
from .session import safe_name


@dataclass
class ProgramRun:
    status: int | None        # the program's exit status; None when it never finished
    output: str               # what it wrote to the result port
    console_log: Path
    accel: str
    seconds: float
    reason: str = ""          # why there is no status, when there is none


def run_program(kernel: KernelSource, binary: Path, args: list[str], out_dir: Path,
                accel: str = "auto", timeout: float = 1800, memory_mb: int = 2048,
                cpus: int = 1) -> ProgramRun:
    workdir = out_dir / safe_name(kernel.label)
    base = image.build_base(image.ImageSpec(kernel, [binary]), workdir / "initramfs-program.cpio")
    # Only a KVM verdict already proven on this host is used; otherwise TCG, which always works.
    chosen = "kvm" if accel == "kvm" or (accel == "auto" and qemu.remembered_verdict() == "kvm") else "tcg"
    machine = qemu.MachineConfig(accel=chosen, memory_mb=memory_mb, cpus=cpus, extra_append=numa.kernel_args(kernel))
    t0 = time.monotonic()
    vm = guest.start(kernel, base, workdir / "program", machine, binary.name,
                     [a.replace("{port}", image.RESULT_PORT) for a in args])
    try:
        vm.proc.wait(timeout=timeout)
        reason = ""
    except subprocess.TimeoutExpired:
        reason = f"still running after {timeout:.0f}s"
    finally:
        qemu_status = vm.stop()
    output, events = _split_output(vm.stream_log.read_text(errors="replace"))
    if "harness-boot" not in events and qemu_status != 0 and not reason:
        raise InfraError(f"QEMU failed (exit {qemu_status}): {vm.qemu_output().strip()[-300:]}")
    if "harness-nokvm" in events:
        reason = f"kernel {kernel.label} has no /dev/kvm after loading its modules"
    status = events.get("harness-exit", {}).get("status")
    if status is None and not reason:
        reason = f"the guest ended (QEMU exit {qemu_status}) before the program finished"
    return ProgramRun(status, output, vm.console_log, chosen, round(time.monotonic() - t0, 2), reason)


def _split_output(text: str) -> tuple[str, dict[str, dict]]:
    """The program's output without /init's harness-* lines, and those lines by event name."""
    kept, events = [], {}
    for line in text.replace("\r", "").splitlines(keepends=True):
        event = _harness_event(line)
        if event:
            events[event["event"]] = event
        else:
            kept.append(line)
    return "".join(kept), events


def _harness_event(line: str) -> dict | None:
    if "harness-" not in line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    is_ours = isinstance(event, dict) and str(event.get("event", "")).startswith("harness-")
    return event if is_ours else None
