"""Running the suite on one kernel: build the image, boot QEMU, follow both serial channels live,
enforce the timeouts, and resume after a crashed case when asked."""
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import gtest, guest, image, numa, qemu, runner_vng
from .console import ConsoleScanner, SplatRules
from .errors import InfraError
from .kernelsource import KernelSource
from .outcomes import CaseOutcome, RunOutcome
from .progress import Progress
from .recorder import BootEnd, BootRecorder, conclude
from .results import BootRecord, KernelRun
from .stream import StreamParser

POLL_S = 0.05
RESULT_PORT_ARG = f"--gmemtest_stream={image.RESULT_PORT}"


@dataclass
class RunOptions:
    binary: Path
    out_dir: Path
    extra_binaries: list[Path] = field(default_factory=list)
    gtest_filter: str | None = None
    suite_args: list[str] = field(default_factory=list)
    accel: str = "auto"                 # auto | kvm | tcg
    memory_mb: int = 2048
    cpus: int = 1
    boot_timeout: float = 120.0         # QEMU start -> the suite's hello
    case_timeout: float = 120.0         # one case's start -> end
    run_timeout: float = 1800.0         # one boot, start to finish
    resume: bool = False                # reboot after a crashed/timed-out case, skipping it
    max_boots: int = 8
    extra_modules: list[str] = field(default_factory=list)
    kernel_args: list[str] = field(default_factory=list)   # appended to the kernel command line
    kvm_first_output_s: float = 5.0     # a KVM boot that prints nothing by then is hung
    kvm_init_s: float = 30.0            # ... or that has not reached /init by then
    runner: str = "qemu"                # qemu: the harness's command line; vng: virtme-ng


class AccelUnusable(Exception):
    """A KVM boot showed that this host cannot run the guest under KVM."""


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", label)


def run_kernel(kernel: KernelSource, opts: RunOptions, progress: Progress | None = None,
               rules: SplatRules | None = None) -> KernelRun:
    """Run the selected cases on `kernel`; every failure to do so ends up in the result."""
    progress = progress or Progress()
    t0 = time.monotonic()
    run = KernelRun(label=kernel.label, release=kernel.release, origin=kernel.origin)
    try:
        _KernelSession(kernel, opts, progress, rules or SplatRules.load(), run).run()
    except InfraError as e:
        run.outcome, run.reason = RunOutcome.INFRA, str(e)
    run.total_s = round(time.monotonic() - t0, 2)
    progress.kernel_done(run)
    return run


class _KernelSession:
    def __init__(self, kernel: KernelSource, opts: RunOptions, progress: Progress, rules: SplatRules,
                 run: KernelRun):
        self.kernel, self.opts, self.progress, self.rules, self.result = kernel, opts, progress, rules, run
        self.workdir = opts.out_dir / safe_name(kernel.label)

    def run(self) -> None:
        opts, run = self.opts, self.result
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base = image.build_base(image.ImageSpec(self.kernel, [opts.binary] + opts.extra_binaries,
                                                     opts.extra_modules), self.workdir / "initramfs-base.cpio")
        selected = gtest.list_cases(opts.binary, opts.gtest_filter, opts.suite_args)
        accel = qemu.initial_accel(opts.accel)
        recorders: list[BootRecorder] = []
        gtest_filter = opts.gtest_filter
        while True:
            self._note(f"boot {len(recorders) + 1} ({accel})" + (f" --gtest_filter={gtest_filter}" if gtest_filter else ""))
            try:
                recorder = self._boot(accel, len(recorders) + 1, gtest_filter)
            except AccelUnusable as e:
                if opts.accel != "auto":
                    raise InfraError(f"-accel {accel} cannot run this kernel here: {e}") from None
                self._note(f"KVM unusable on this host ({e}); falling back to TCG")
                qemu.remember_verdict("tcg")
                accel = "tcg"
                continue
            if accel == "kvm" and opts.accel == "auto":
                qemu.remember_verdict("kvm")
            run.accel = accel
            recorders.append(recorder)
            interrupted = recorder.interrupted_case
            remaining = [c for c in selected or [] if c not in run.cases]
            if not (opts.resume and interrupted and len(recorders) < opts.max_boots
                    and (remaining or not selected)):
                break
            gtest_filter = gtest.exclude(opts.gtest_filter, list(run.cases))
            self._note(f"resuming after {interrupted}")
        conclude(run, recorders, selected)

    def _note(self, message: str) -> None:
        self.progress.note(self.kernel.label, message)

    def _boot(self, accel: str, number: int, gtest_filter: str | None) -> BootRecorder:
        opts, run = self.opts, self.result
        args = [RESULT_PORT_ARG] + ([f"--gtest_filter={gtest_filter}"] if gtest_filter else []) + opts.suite_args
        machine = qemu.MachineConfig(accel=accel, memory_mb=opts.memory_mb, cpus=opts.cpus,
                                     extra_append=numa.kernel_args(self.kernel) + opts.kernel_args)
        t0 = time.monotonic()
        bootdir = self.workdir / f"boot-{number}"
        if opts.runner == "vng":
            vm = runner_vng.start(self.kernel, self.base, bootdir, machine, opts.binary, args, opts.extra_modules)
        else:
            vm = guest.start(self.kernel, self.base, bootdir, machine, opts.binary.name, args)
        record = BootRecord(number=number, console_log=str(vm.console_log), stream_log=str(vm.stream_log),
                            accel=accel)
        recorder = BootRecorder(run, number, on_case=lambda r: self.progress.case(self.kernel.label, r))
        follower = _Follower(vm.stream_log, vm.console_log, recorder, self.rules)
        try:
            end = self._watch(vm, follower, accel, t0, record)
        finally:
            status = vm.stop()
            follower.poll(final=True)
        end.qemu_status, end.qemu_stderr = status, vm.qemu_output()
        if accel == "kvm" and not recorder.booted and status != 0:
            raise AccelUnusable(f"QEMU exited with {status}: {end.qemu_stderr.strip()[-200:]}")
        if accel == "kvm" and recorder.no_kvm:
            raise AccelUnusable("the guest has no /dev/kvm under KVM (no nested virtualization)")
        recorder.finish(end, follower.scanner.last_line)
        record.end, record.qemu_status = recorder.reason or "completed", status
        record.seconds = round(time.monotonic() - t0, 2)
        run.boots.append(record)
        return recorder

    def _watch(self, vm: guest.Guest, follower, accel: str, t0: float, record: BootRecord) -> BootEnd:
        """Follow the guest until QEMU exits or a time limit runs out."""
        opts = self.opts
        trial = accel == "kvm" and opts.accel == "auto"
        while True:
            record.qemu_cpu_s = vm.cpu_seconds() or record.qemu_cpu_s
            exited = vm.proc.poll() is not None
            follower.poll()
            now = time.monotonic()
            elapsed = now - t0
            if record.first_result_s is None and follower.first_end_at is not None:
                record.first_result_s = round(follower.first_end_at - t0, 2)
                record.first_result_cpu_s = record.qemu_cpu_s
            if exited:
                return BootEnd()
            rec = follower.recorder
            if trial and not follower.console_bytes and elapsed > opts.kvm_first_output_s:
                raise AccelUnusable(f"no console output in {opts.kvm_first_output_s:.0f}s")
            if trial and not rec.booted and elapsed > opts.kvm_init_s:
                raise AccelUnusable(f"/init not reached in {opts.kvm_init_s:.0f}s")
            if rec.running and now - follower.case_started_at > opts.case_timeout:
                return BootEnd(case_timeout=True)
            # Until a case starts (boot, /init, the suite's probe) only --boot-timeout applies:
            # a probe that hangs must not hold the run until --run-timeout.
            waiting = not (rec.started_any or rec.done)
            if (waiting and elapsed > opts.boot_timeout) or elapsed > opts.run_timeout:
                return BootEnd(boot_timeout=True)
            time.sleep(POLL_S)


class _Follower:
    """Reads new bytes of both channel files and feeds them to the recorder, stream first, so a
    splat is charged to the case whose start has arrived."""

    def __init__(self, stream_log: Path, console_log: Path, recorder: BootRecorder, rules: SplatRules):
        self.recorder = recorder
        self.parser = StreamParser()
        self.scanner = ConsoleScanner(rules)
        self._files = [open(stream_log, "rb"), open(console_log, "rb")]
        self.console_bytes = 0
        self.case_started_at = 0.0
        self.first_end_at: float | None = None

    def poll(self, final: bool = False) -> None:
        stream_data, console_data = (f.read() for f in self._files)
        self.console_bytes += len(console_data)
        events = self.parser.feed(stream_data) + (self.parser.finish() if final else [])
        console_events = self.scanner.feed(console_data) + (self.scanner.finish() if final else [])
        # With case markers in the console, the console orders splats exactly and goes first (so
        # a case's splat is known before its end event is reported); without them, the stream
        # goes first, so a splat is charged to the case whose start arrived with it.
        markers = self.recorder.saw_markers or any(e.kind.startswith("marker-") for e in console_events)
        if markers:
            self._deliver_console(console_events)
        for event in events:
            if event["event"] == "start":
                self.case_started_at = time.monotonic()
            elif event["event"] == "end" and self.first_end_at is None:
                self.first_end_at = time.monotonic()
            self.recorder.on_stream(event)
        if not markers:
            self._deliver_console(console_events)
        if final:
            for f in self._files:
                f.close()

    def _deliver_console(self, events) -> None:
        for event in events:
            self.recorder.on_console(event)
