"""Checks on a kernel image file before we try to boot it (x86 boot protocol header)."""
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import InfraError

_ELF_MAGIC = b"\x7fELF"
_ARM64_MAGIC_OFFSET, _ARM64_MAGIC = 0x38, b"ARM\x64"
_RISCV_MAGIC_OFFSET, _RISCV_MAGIC = 0x30, b"RISCV\0\0\0"
_XLF_KERNEL_64 = 1


@dataclass(frozen=True)
class BzImage:
    path: Path
    release: str      # uname -r of the kernel, from the header's version string
    version: str      # the whole version string


def inspect(path: Path) -> BzImage:
    """Validate `path` as a bootable x86_64 bzImage; raise InfraError saying what is wrong."""
    if not path.is_file():
        raise InfraError(f"kernel image {path} does not exist")
    data = path.read_bytes()
    if len(data) < 0x300:
        raise InfraError(f"kernel image {path} is only {len(data)} bytes: not a bzImage")
    if data[_ARM64_MAGIC_OFFSET:_ARM64_MAGIC_OFFSET + 4] == _ARM64_MAGIC:
        raise InfraError(f"{path} is an arm64 kernel Image; this harness boots x86_64 bzImages")
    if data[_RISCV_MAGIC_OFFSET:_RISCV_MAGIC_OFFSET + 8] == _RISCV_MAGIC:
        raise InfraError(f"{path} is a RISC-V kernel Image; this harness boots x86_64 bzImages")
    if data[:4] == _ELF_MAGIC:
        raise InfraError(f"{path} is an ELF file (vmlinux?); pass the bzImage "
                         "(arch/x86/boot/bzImage) instead")
    if data[0x1FE:0x200] != b"\x55\xaa" or data[0x202:0x206] != b"HdrS":
        raise InfraError(f"{path} is not an x86 bzImage (no boot sector signature / HdrS header)")
    setup_sects = data[0x1F1] or 4
    syssize, = struct.unpack_from("<I", data, 0x1F4)
    expected = (setup_sects + 1) * 512 + syssize * 16
    if len(data) < expected:
        raise InfraError(f"kernel image {path} is truncated: {len(data)} bytes, "
                         f"the header promises {expected}")
    protocol, = struct.unpack_from("<H", data, 0x206)
    if protocol >= 0x20C:
        xloadflags, = struct.unpack_from("<H", data, 0x236)
        if not xloadflags & _XLF_KERNEL_64:
            raise InfraError(f"{path} is a 32-bit x86 kernel; build an x86_64 kernel")
    version = _version_string(data)
    return BzImage(path=path, release=version.split(" ", 1)[0], version=version)


def _version_string(data: bytes) -> str:
    pointer, = struct.unpack_from("<H", data, 0x20E)
    start = pointer + 0x200
    if not pointer or start >= len(data):
        return ""
    end = data.find(b"\0", start, start + 512)
    return data[start:end if end >= 0 else start + 512].decode(errors="replace")
