"""Running gmemtest_bench inside a kernel booted under QEMU, with gmemharness's image and QEMU
pieces (the same initramfs and /init as the suite): the benchmark binary and its shared libraries
go into the image, its JSON goes to the result port, its console output to the console log."""
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .results import extract_json

DEFAULT_TIMEOUT_S = 3600.0
# Sizes for a nested guest (2 GiB, possibly TCG, where one userfault round trip costs ~1 ms):
# far smaller than the host defaults, so a whole run takes minutes.
NESTED_DEFAULT_ARGS = ["--gmembench_mib=16", "--gmembench_paging_mib=2", "--gmembench_vcpus=1,2",
                       "--gmembench_iterations=1", "--benchmark_repetitions=3"]


class VmRunError(Exception):
    pass


@dataclass
class VmOptions:
    binary: Path
    out_dir: Path
    bench_args: list[str] = field(default_factory=lambda: list(NESTED_DEFAULT_ARGS))
    accel: str = "auto"          # auto | kvm | tcg
    memory_mb: int = 2048
    # One guest CPU: under TCG a second one makes every userfault wake-up an emulated IPI to an
    # idle CPU (~10x slower uffd round trips measured on the 7.3 Debian kernel).
    cpus: int = 1
    timeout_s: float = DEFAULT_TIMEOUT_S
    modules: Path | None = None  # modules directory for a bzImage kernel


@dataclass
class VmResult:
    kernel: str          # the spec as given
    release: str
    accel: str
    json_path: Path
    console_log: Path
    seconds: float


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", label)


def guest_args(bench_args: list[str], result_port: str) -> list[str]:
    """The benchmark's command line in the guest: JSON to the result port, console output as usual."""
    return [f"--benchmark_out={result_port}", "--benchmark_out_format=json", "--benchmark_color=false"] + \
        list(bench_args)


def parse_stream(text: str) -> dict:
    """The benchmark JSON from the result port's contents, or why there is none (the image's own
    events say when the guest had no /dev/kvm or the program failed)."""
    if '"event":"harness-nokvm"' in text.replace(" ", ""):
        raise VmRunError("the guest kernel has no /dev/kvm (init reported harness-nokvm)")
    try:
        return extract_json(text)
    except ValueError:
        status = re.search(r'"event"\s*:\s*"harness-exit"\s*,\s*"status"\s*:\s*(\d+)', text)
        detail = f"the benchmark exited with status {status.group(1)}" if status else \
            "the guest stopped before the benchmark finished (crash or timeout?)"
        raise VmRunError(f"no benchmark JSON on the result port: {detail}") from None


def run_in_kernel(spec: str, opts: VmOptions, boot: int = 1) -> VmResult:
    from gmemharness import image, kernels, qemu  # the harness package beside this one

    kernel = kernels.resolve(spec, opts.modules)
    kerneldir = opts.out_dir / _safe(kernel.label)
    workdir = kerneldir / f"boot-{boot}"
    workdir.mkdir(parents=True, exist_ok=True)
    base = kerneldir / "initramfs-base.cpio"
    if boot == 1 or not base.is_file():
        image.build_base(image.ImageSpec(kernel, [opts.binary.resolve()]), base)
    layer = image.boot_layer(opts.binary.name, guest_args(opts.bench_args, image.RESULT_PORT))
    initrd = image.write_boot_initrd(base, layer, workdir / "initrd")
    accel = qemu.initial_accel(opts.accel)
    console, stream = workdir / "console.log", workdir / "stream.log"
    t0 = time.monotonic()
    while True:
        for f in (console, stream):
            f.write_bytes(b"")
        cmd = qemu.command(qemu.MachineConfig(accel=accel, memory_mb=opts.memory_mb, cpus=opts.cpus),
                           kernel.bzimage, initrd, console, stream)
        (workdir / "qemu-cmdline.txt").write_text(" ".join(cmd) + "\n")
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=opts.timeout_s)
            qemu_out = (proc.stdout + proc.stderr).decode(errors="replace")
        except subprocess.TimeoutExpired:
            raise VmRunError(f"{kernel.label}: no end within {opts.timeout_s:.0f}s (console: {console})") from None
        text = stream.read_text(errors="replace")
        try:
            doc = parse_stream(text)
            break
        except VmRunError as e:
            # A first KVM attempt that never reached /init: this host cannot nest under KVM.
            if accel == "kvm" and opts.accel == "auto" and '"harness-boot"' not in text:
                qemu.remember_verdict("tcg")
                accel = "tcg"
                continue
            raise VmRunError(f"{kernel.label} ({accel}): {e}; console: {console}; qemu: {qemu_out.strip()[-300:]}") \
                from None
    initrd.unlink(missing_ok=True)
    out = workdir / "bench.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return VmResult(spec, kernel.release, accel, out, console, round(time.monotonic() - t0, 1))
