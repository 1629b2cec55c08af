"""Starting and stopping one QEMU guest on a test image, with its logs in a boot directory."""
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import image, qemu, scratch_disk
from .kernelsource import KernelSource


@dataclass
class Guest:
    bootdir: Path
    console_log: Path
    stream_log: Path
    qemu_log: Path
    initrd: Path
    proc: subprocess.Popen
    disk: Path | None = None  # the scratch disk for direct I/O (none through vng)

    def stop(self) -> int:
        """Kill QEMU if it still runs, drop the per-boot initrd; QEMU's exit status."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.initrd.unlink(missing_ok=True)
        if self.disk:
            self.disk.unlink(missing_ok=True)
        return self.proc.returncode

    def cpu_seconds(self) -> float | None:
        """CPU time QEMU has used so far (all threads): what the boot costs on an idle core,
        whatever else the machine is doing. None once the process is gone."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def qemu_output(self) -> str:
        return self.qemu_log.read_text(errors="replace")


def start(kernel: KernelSource, base: Path, bootdir: Path, machine: qemu.MachineConfig,
          binary_name: str, args: list[str]) -> Guest:
    """Boot `base` plus a layer running `binary_name args`, with a fresh scratch disk; the console
    and the result port are written to files in `bootdir` as the guest runs."""
    bootdir.mkdir(parents=True, exist_ok=True)
    console_log, stream_log, qemu_log = bootdir / "console.log", bootdir / "stream.jsonl", bootdir / "qemu.log"
    for f in (console_log, stream_log):
        f.write_bytes(b"")
    disk = scratch_disk.create(bootdir / "scratch.img")
    layer = image.boot_layer(binary_name, args, scratch_device=scratch_disk.GUEST_DEVICE)
    initrd = image.write_boot_initrd(base, layer, bootdir / "initrd")
    cmd = qemu.command(machine, kernel.bzimage, initrd, console_log, stream_log, disk)
    (bootdir / "qemu-cmdline.txt").write_text(" ".join(cmd) + "\n")
    with open(qemu_log, "wb") as qlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT)
    return Guest(bootdir, console_log, stream_log, qemu_log, initrd, proc, disk)
