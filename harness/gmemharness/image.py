"""Test images: an initramfs with busybox-static, the suite binary (and its shared libraries when
it is dynamic), the kernel modules the cases need, and vm-images/init.sh as /init.

An image is built in two layers: the base (everything above) once per run and kernel, and a tiny
boot layer (arguments for this boot) appended per boot; the kernel unpacks concatenated archives
in order, so resuming after a crash with a new --gtest_filter does not rebuild the base."""
import io
import re
import shlex
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import cache, kmods, scratch_disk
from .cpio import CpioWriter
from .errors import InfraError
from .kernelsource import KernelSource, from_bzimage

REPO = Path(__file__).resolve().parents[2]
INIT_SCRIPT = REPO / "vm-images" / "init.sh"
# Where `cmake -S . -B build && cmake --build build` puts the suite (cases/CMakeLists.txt).
BUILT_SUITE = REPO / "build" / "cases" / "gmemtest"
BUSYBOX = Path("/bin/busybox")
RESULT_PORT = "/dev/ttyS1"
GUEST_BIN_DIR = "/gmemtest"
_PT_INTERP = 3
# A task stuck 30 s is reported (and fails its case) well before the 120 s case timeout.
DEFAULT_SYSCTLS = ("kernel.hung_task_timeout_secs=30", "kernel.panic_on_oops=1", "vm.nr_hugepages=16")


@dataclass
class ImageSpec:
    kernel: KernelSource
    binaries: list[Path]                      # the suite binary first, then extras (e.g. bench)
    extra_modules: list[str] = field(default_factory=list)


def build_from_bzimage(bzimage: Path, binaries: list[Path], out: Path,
                       modules_dir: Path | None = None, label: str | None = None) -> Path:
    """The entry point for other tools (bisect, kernel trees): an image from a bzImage path and
    an optional modules directory (INSTALL_MOD_PATH root or lib/modules/<release>)."""
    return build_base(ImageSpec(from_bzimage(bzimage, modules_dir, label=label), binaries), out)


def build_base(spec: ImageSpec, out: Path) -> Path:
    """Write the base initramfs to `out` (atomically) and return it."""
    if not INIT_SCRIPT.is_file():
        raise InfraError(f"{INIT_SCRIPT} is missing")
    if not BUSYBOX.is_file() or _is_dynamic(BUSYBOX):
        raise InfraError(f"{BUSYBOX} is missing or not static: install busybox-static")
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    for d in ("bin", "dev", "proc", "sys", "tmp", "run", "etc/gmemtest"):
        cpio.directory(d)
    cpio.copy("bin/busybox", BUSYBOX, 0o755)
    cpio.copy("init", INIT_SCRIPT, 0o755)
    _add_binaries(cpio, spec.binaries)
    _add_modules(cpio, spec.kernel, spec.extra_modules)
    cpio.close()
    with cache.staged_file(out) as tmp:
        tmp.write_bytes(buf.getvalue())
    return out


def boot_layer(binary: str, args: list[str], sysctls: tuple[str, ...] = DEFAULT_SYSCTLS,
               stream: str = RESULT_PORT, scratch_device: str = "") -> bytes:
    """The per-boot archive: which binary to run, with which arguments; `stream` takes /init's
    own events (/dev/null where the machine has one serial port only, e.g. LAVA's);
    `scratch_device`: the guest's scratch disk (scratch_disk), which /init mounts for direct I/O
    ("" when none)."""
    conf = (f"GMEMTEST_BINARY={shlex.quote(GUEST_BIN_DIR + '/' + binary)}\n"
            f"GMEMTEST_ARGS={shlex.quote(shlex.join(args))}\n"
            f"GMEMTEST_STREAM={stream}\n"
            f"GMEMTEST_SYSCTLS={shlex.quote(' '.join(sysctls))}\n"
            f"GMEMTEST_SCRATCH_DEVICE={shlex.quote(scratch_device)}\n")
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    cpio.file("etc/gmemtest/boot.conf", conf.encode())
    cpio.close()
    return buf.getvalue()


def write_boot_initrd(base: Path, layer: bytes, out: Path) -> Path:
    with open(out, "wb") as f:
        f.write(base.read_bytes())
        f.write(layer)
    return out


def _add_binaries(cpio: CpioWriter, binaries: list[Path]) -> None:
    libs: dict[str, Path] = {}
    for binary in binaries:
        if not binary.is_file():
            raise InfraError(f"suite binary {binary} does not exist (build it first: "
                             f"cmake --build build --target {binary.name})")
        cpio.file(f"{GUEST_BIN_DIR}/{binary.name}", _without_debug_info(binary), 0o755)
        if _is_dynamic(binary):
            libs.update(shared_libraries(binary))
    for guest_path, host_path in sorted(libs.items()):
        cpio.copy(guest_path, host_path.resolve(), 0o755)


def _without_debug_info(binary: Path) -> bytes:
    """The binary minus its debug sections: less for the guest to unpack under emulation."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / binary.name
        proc = subprocess.run(["strip", "--strip-debug", "-o", str(out), str(binary)], capture_output=True)
        return out.read_bytes() if proc.returncode == 0 and out.is_file() else binary.read_bytes()


def _is_dynamic(binary: Path) -> bool:
    """True when the ELF file has a PT_INTERP program header (needs ld.so and libraries)."""
    data = binary.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False   # a script (run by busybox sh) or not a 64-bit ELF: nothing to resolve
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == _PT_INTERP
               for i in range(phnum))


def shared_libraries(binary: Path) -> dict[str, Path]:
    """guest path -> host file for each library ldd resolves, plus the dynamic loader."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs: dict[str, Path] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m and "not found" not in line:
            path = m.group(m.lastindex)
            libs[path] = Path(path)
        elif "not found" in line:
            raise InfraError(f"{binary} needs {line.split()[0]}, which ldd cannot find")
    return libs


def _add_modules(cpio: CpioWriter, kernel: KernelSource, extra: list[str]) -> None:
    """KVM's and the scratch disk's modules when the kernel has them as modules (they may be built
    in), plus `extra`, which must exist; all with their dependencies, listed in load order for
    /init."""
    order: list[kmods.Module] = []
    if kernel.modules_dir is not None:
        tree = kmods.ModuleTree(kernel.modules_dir)
        missing = [m for m in extra if not tree.has(m) and tree.is_builtin(m) is not True]
        if missing:
            raise InfraError(f"kernel {kernel.label} has no module {', '.join(missing)}")
        order = tree.load_order(list(kmods.KVM_MODULES) + list(scratch_disk.MODULES) + extra)
    elif extra:
        raise InfraError(f"modules {', '.join(extra)} requested but kernel {kernel.label} "
                         "was given without a modules directory")
    for module in order:
        cpio.file(f"lib/modules/{module.relpath}", kmods.read_uncompressed(module.path))
    cpio.file("etc/gmemtest/modules", "".join(f"{m.name} {m.relpath}\n" for m in order).encode())
