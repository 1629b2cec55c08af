"""A minimal writer for the newc cpio format the kernel unpacks as an initramfs.

Written in Python so an image is built without a staging tree on disk and comes out the same
for the same inputs (fixed mtimes, owners and inode numbers)."""
import stat
from pathlib import Path
from typing import BinaryIO

_TRAILER = "TRAILER!!!"


class CpioWriter:
    def __init__(self, out: BinaryIO):
        self._out = out
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        name_bytes = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_bytes), 0]
        self._ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._out.write(header + name_bytes + _pad(len(header) + len(name_bytes)))
        self._out.write(data + _pad(len(data)))

    def directory(self, path: str) -> None:
        path = path.strip("/")
        if not path or path in self._dirs:
            return
        parent = path.rpartition("/")[0]
        if parent:
            self.directory(parent)
        self._dirs.add(path)
        self._entry(path, stat.S_IFDIR | 0o755, b"")

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self.directory(path.rpartition("/")[0])
        self._entry(path, stat.S_IFREG | mode, data)

    def copy(self, path: str, source: Path, mode: int | None = None) -> None:
        if mode is None:
            mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
        self.file(path, source.read_bytes(), mode)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self.directory(path.rpartition("/")[0])
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def close(self) -> None:
        self._entry(_TRAILER, 0, b"")


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def read_names(data: bytes) -> dict[str, bytes]:
    """Parse a newc archive back into {name: data} (used by tests and image inspection)."""
    entries: dict[str, bytes] = {}
    pos = 0
    while pos + 110 <= len(data):
        if data[pos:pos + 6] != b"070701":
            raise ValueError(f"bad cpio magic at offset {pos}")
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        size, namesize = fields[6], fields[11]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        data_start = name_start + namesize + len(_pad(110 + namesize))
        if name == _TRAILER:
            break
        entries[name] = data[data_start:data_start + size]
        pos = data_start + size + len(_pad(size))
    return entries
