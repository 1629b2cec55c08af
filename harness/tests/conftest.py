import json
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HARNESS))


OPT_IN = {"vm": "boots kernels under QEMU: run with -m vm",
          "deb": "installs the .deb in a debootstrapped chroot: run with -m deb"}


def pytest_collection_modifyitems(config, items):
    """Tests marked vm (real kernels) or deb (a Debian chroot) run only when asked for with -m."""
    asked = config.getoption("markexpr") or ""
    for marker, reason in OPT_IN.items():
        if marker in asked:
            continue
        for item in items:
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def private_cache(request, tmp_path, monkeypatch):
    """Unit tests never touch the user's cache (accelerator verdicts, kernels); vm tests share
    the real one so Debian kernels are downloaded once."""
    if not any(request.node.get_closest_marker(m) for m in OPT_IN):
        monkeypatch.setenv("GMEMTEST_CACHE", str(tmp_path / "cache"))


def write_bzimage(path: Path, release: str = "6.99.0-test", size: int = 8192, arch_magic: bytes = b"") -> Path:
    """A file with a valid x86 boot header (not bootable): enough for the image checks."""
    import struct
    data = bytearray(size)
    data[0x1F1] = 1                                   # setup_sects
    struct.pack_into("<I", data, 0x1F4, (size - 1024) // 16)  # syssize in 16-byte units
    data[0x1FE:0x200] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, 0x20F)        # boot protocol 2.15
    struct.pack_into("<H", data, 0x236, 1)            # XLF_KERNEL_64
    version = f"{release} (test@host) #1 SMP".encode() + b"\0"
    struct.pack_into("<H", data, 0x20E, 0x300 - 0x200)
    data[0x300:0x300 + len(version)] = version
    if arch_magic:
        data[0x38:0x3C] = arch_magic
    path.write_bytes(bytes(data))
    return path


def write_modules(root: Path, release: str = "6.99.0-test", kvm: bool = True) -> Path:
    """lib/modules/<release> with xz-compressed modules and a modules.dep."""
    import lzma
    moddir = root / "lib/modules" / release
    files = {"kernel/virt/lib/irqbypass.ko.xz": [],
             "kernel/net/other.ko.xz": []}
    if kvm:
        files.update({"kernel/arch/x86/kvm/kvm.ko.xz": ["kernel/virt/lib/irqbypass.ko.xz"],
                      "kernel/arch/x86/kvm/kvm-amd.ko.xz": ["kernel/arch/x86/kvm/kvm.ko.xz",
                                                            "kernel/virt/lib/irqbypass.ko.xz"]})
    for rel in files:
        (moddir / rel).parent.mkdir(parents=True, exist_ok=True)
        (moddir / rel).write_bytes(lzma.compress(f"module {rel}".encode()))
    (moddir / "modules.dep").write_text("".join(f"{k}: {' '.join(v)}\n" for k, v in files.items()))
    return root


@pytest.fixture
def fake_kernel(tmp_path):
    from gmemharness.kernelsource import from_bzimage
    image = write_bzimage(tmp_path / "bzImage")
    return from_bzimage(image, write_modules(tmp_path / "mods"), label="test")


FAKE_SUITE = HARNESS / "tests" / "fake_suite.sh"
FAKE_QEMU = HARNESS / "tests" / "fake_qemu.py"


@pytest.fixture
def guest(monkeypatch, tmp_path):
    """The fake QEMU plays each boot (up to 4): Fake.A passes, Fake.B skips."""
    from gmemharness import qemu
    monkeypatch.setattr(qemu, "qemu_binary", lambda: str(FAKE_QEMU))
    script = [["stream", {"event": e, **fields}] for e, fields in (
        ("harness-boot", {}), ("hello", {"version": 1}), ("start", {"case": "Fake.A"}),
        ("end", {"case": "Fake.A", "outcome": "pass"}), ("start", {"case": "Fake.B"}),
        ("end", {"case": "Fake.B", "outcome": "skip", "message": "no hugetlb"}),
        ("done", {}))]
    path = tmp_path / "scripts.json"
    path.write_text(json.dumps([script] * 4))
    monkeypatch.setenv("FAKE_GUEST_SCRIPTS", str(path))


def make_patch(tmp_path: Path, name: str, path: str, old: str, new: str) -> Path:
    """A one-file patch made with git diff --no-index."""
    a, b = tmp_path / "mk" / "a", tmp_path / "mk" / "b"
    for side, text in ((a, old), (b, new)):
        (side / path).parent.mkdir(parents=True, exist_ok=True)
        (side / path).write_text(text)
    diff = subprocess.run(["git", "diff", "--no-index", "--no-prefix", f"a/{path}", f"b/{path}"],
                          cwd=tmp_path / "mk", capture_output=True, text=True).stdout
    out = tmp_path / "series" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(f"From: t <t@t>\nSubject: [PATCH] {name}\n\n---\n{diff}")
    return out


LINES = "".join(f"line {i}\n" for i in range(1, 21))
