"""Booting through virtme-ng (`gmemharness run --runner vng`) instead of the harness's own QEMU
command line. vng boots the kernel with the host's files as the guest's root, so the suite and the
kernel's modules are run from where they are on the host (vm-images/vng-guest.sh); the result
stream comes back over a virtio serial port named gmemtest.results, the console on vng's stdout."""
import shlex
import shutil
import subprocess
from pathlib import Path

from . import image, kmods, qemu
from .errors import InfraError
from .guest import Guest
from .kernelsource import KernelSource

VNG = "vng"
GUEST_SCRIPT = image.REPO / "vm-images" / "vng-guest.sh"
PORT_NAME = "gmemtest.results"


def vng_binary() -> str:
    path = shutil.which(VNG)
    if not path:
        raise InfraError("--runner vng: virtme-ng is not installed (no `vng` on PATH; Debian 13 and "
                         "later package it: apt-get install virtme-ng); --runner qemu needs nothing more")
    return path


def module_list(kernel: KernelSource, extra: list[str], out: Path) -> Path:
    """The kernel's KVM modules (host paths) in load order, for the guest script."""
    lines = []
    if kernel.modules_dir is not None:
        tree = kmods.ModuleTree(kernel.modules_dir)
        for module in tree.load_order(list(kmods.KVM_MODULES) + extra):
            path = out.parent / f"{module.name}.ko"
            path.write_bytes(kmods.read_uncompressed(module.path))
            lines.append(f"{module.name} {path}\n")
    out.write_text("".join(lines))
    return out


def command(machine: qemu.MachineConfig, kernel: Path, stream_log: Path, modules: Path, suite: Path,
            args: list[str]) -> list[str]:
    qemu_opts = ["-device", "virtio-serial-pci",
                 "-chardev", f"file,id=results,path={stream_log}",
                 "-device", f"virtserialport,chardev=results,name={PORT_NAME}"]
    if machine.accel == "tcg":
        qemu_opts += ["-cpu", qemu.TCG_CPU]
    run = shlex.join([str(GUEST_SCRIPT), str(modules), str(suite), *args])
    cmd = [vng_binary(), "--run", str(kernel), "--verbose", "--memory", f"{machine.memory_mb}M",
           "--cpus", str(machine.cpus)]
    if machine.accel == "tcg":
        cmd.append("--disable-kvm")
    append = qemu.kernel_cmdline(machine).replace("console=ttyS0", "").split()
    for arg in append:
        cmd += ["--append", arg]
    return cmd + ["--exec", run, "--qemu-opts", *qemu_opts]


def start(kernel: KernelSource, base: Path, bootdir: Path, machine: qemu.MachineConfig,
          binary: Path, args: list[str], extra_modules: list[str] = ()) -> Guest:
    """Like guest.start, through vng; `base` (the harness's initramfs) is not used."""
    bootdir.mkdir(parents=True, exist_ok=True)
    console_log, stream_log, qemu_log = bootdir / "console.log", bootdir / "stream.jsonl", bootdir / "qemu.log"
    for f in (console_log, stream_log):
        f.write_bytes(b"")
    modules = module_list(kernel, list(extra_modules), bootdir / "modules.txt")
    args = [a for a in args if not a.startswith("--gmemtest_stream=")]
    cmd = command(machine, kernel.bzimage, stream_log, modules, binary, args)
    (bootdir / "qemu-cmdline.txt").write_text(shlex.join(cmd) + "\n")
    with open(console_log, "ab") as console, open(qemu_log, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=log)
    placeholder = bootdir / "initrd"
    placeholder.write_bytes(b"")
    return Guest(bootdir, console_log, stream_log, qemu_log, placeholder, proc)
