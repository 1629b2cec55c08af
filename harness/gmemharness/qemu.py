"""The QEMU command line, and which accelerator this host can really use."""
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, scratch_disk
from .errors import InfraError

QEMU = "qemu-system-x86_64"
# -cpu max emulates AMD SVM, so the guest loads kvm_amd and has /dev/kvm. Without cx16: QEMU 7.2's
# TCG cmpxchg16b intermittently double-faults a Debian 6.12 guest in SLUB's kmalloc fast path
# (4 boots in 12 here; 0 in 20 with cx16=off, where SLUB takes its locked path instead).
TCG_CPU = "max,cx16=off"


@dataclass
class MachineConfig:
    accel: str = "tcg"           # "kvm" or "tcg"
    memory_mb: int = 2048
    cpus: int = 1
    numa_nodes: int = 2          # NUMA cases need more than one node; cloud kernels lack NUMA_EMU
    extra_append: list[str] = field(default_factory=list)


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if not path:
        raise InfraError(f"{QEMU} not found: install qemu-system-x86 (apt-get install qemu-system-x86)")
    return path


def host_tsc_khz() -> int | None:
    """The host's TSC rate. Under TCG the guest TSC ticks at the host's rate; telling the kernel
    (tsc_early_khz) avoids a calibration that fails on a loaded host and leaves KVM unusable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return round(float(line.split(":")[1]) * 1000)
    except OSError:
        pass
    return None


def kernel_cmdline(machine: MachineConfig) -> str:
    # panic=-1 with QEMU's -no-reboot: a panic ends QEMU at once instead of hanging the run.
    # oops=panic: an oops mid-case is a crash of that case, not a half-dead kernel.
    # printk.devkmsg=on: marker lines written to /dev/kmsg are never rate-limited away.
    args = ["console=ttyS0", "panic=-1", "oops=panic", "printk.devkmsg=on"]
    if machine.accel == "tcg" and (khz := host_tsc_khz()):
        args.append(f"tsc_early_khz={khz}")
    return " ".join(args + machine.extra_append)


def command(machine: MachineConfig, kernel: Path, initrd: Path, console_log: Path,
            stream_log: Path, disk: Path | None = None) -> list[str]:
    """`disk`: a raw image attached as the guest's virtio-blk disk (scratch_disk)."""
    if machine.accel == "kvm":
        accel = ["-accel", "kvm", "-cpu", "host"]
    else:
        accel = ["-accel", "tcg,thread=multi" if machine.cpus > 1 else "tcg", "-cpu", TCG_CPU]
    return [qemu_binary(), "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
            "-no-reboot", *accel, "-m", str(machine.memory_mb), "-smp", str(machine.cpus), *numa(machine),
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", kernel_cmdline(machine),
            "-chardev", f"file,id=console,path={console_log}", "-serial", "chardev:console",
            "-chardev", f"file,id=results,path={stream_log}", "-serial", "chardev:results",
            *(scratch_disk.qemu_args(disk) if disk else [])]


def numa(machine: MachineConfig) -> list[str]:
    """Memory split evenly over `numa_nodes` nodes (described to the guest by ACPI SRAT); the
    vCPUs all sit on node 0, the others are memory-only nodes."""
    if machine.numa_nodes < 2:
        return []
    size = machine.memory_mb // machine.numa_nodes
    args = []
    for node in range(machine.numa_nodes):
        mem = size if node else machine.memory_mb - size * (machine.numa_nodes - 1)
        args += ["-object", f"memory-backend-ram,id=mem{node},size={mem}M", "-numa", f"node,nodeid={node},memdev=mem{node}"
                 + (f",cpus=0-{machine.cpus - 1}" if node == 0 else "")]
    return args


# -- accelerator choice ------------------------------------------------------------------------
# "auto" tries KVM only when /dev/kvm is usable and no earlier trial on this host failed; the
# boot loop watches a KVM boot closely (console output within seconds, /init within a few more)
# and falls back to TCG, remembering the verdict so the next run does not pay for the trial.

def _verdict_file() -> Path:
    return cache.cache_root() / "accel-verdict.json"


def _host_key() -> str:
    try:
        qemu_version = subprocess.run([qemu_binary(), "--version"], capture_output=True,
                                      text=True).stdout.split("\n")[0]
    except InfraError:
        qemu_version = "none"
    return f"{platform.release()}|{qemu_version}"


def remembered_verdict() -> str | None:
    try:
        data = json.loads(_verdict_file().read_text())
    except (OSError, ValueError):
        return None
    return data.get(_host_key())


def remember_verdict(accel: str) -> None:
    path = _verdict_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[_host_key()] = accel
    with cache.staged_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def initial_accel(requested: str) -> str:
    """The accelerator to try first for `requested` in {auto, kvm, tcg}."""
    if requested in ("kvm", "tcg"):
        return requested
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    return remembered_verdict() or "kvm"
