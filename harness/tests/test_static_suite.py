"""The static suite in a busybox-only initramfs: no library from the build host goes in, and
(with -m vm) a bzImage booted through the harness's bzImage path runs it, and the --ktap image
runs it by itself with strict KTAP on the console."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import FAKE_SUITE
from gmemharness import cli, debkernel, image, ktap, qemu, session
from gmemharness.cpio import read_names
from gmemharness.kernelsource import from_bzimage

BENCH = image.REPO / "build" / "bench" / "gmemtest_bench"
ALLOWED = {"bin", "dev", "proc", "sys", "tmp", "run", "etc", "etc/gmemtest", "bin/busybox", "init",
           "gmemtest", "gmemtest/gmemtest", "etc/gmemtest/modules", "etc/gmemtest/boot.conf"}


def suite_or_skip() -> Path:
    if not image.BUILT_SUITE.is_file():
        pytest.skip(f"{image.BUILT_SUITE} is not built")
    return image.BUILT_SUITE


def test_the_built_suite_is_fully_static():
    suite = suite_or_skip()
    assert not image._is_dynamic(suite), f"{suite} has a PT_INTERP: configure with -DGMEMTEST_STATIC=ON"
    assert "statically linked" in subprocess.run(["file", "-L", str(suite)], capture_output=True, text=True).stdout


def not_busybox_and_suite_only(names) -> list[str]:
    """Entries beyond busybox, /init, the suite and the guest kernel's own modules."""
    return sorted(n for n in names if n not in ALLOWED and not n.startswith("lib/modules")
                  and n != "lib")


def test_the_image_of_a_static_suite_holds_busybox_init_and_the_suite_only(tmp_path, fake_kernel):
    suite = suite_or_skip()
    kernel = from_bzimage(fake_kernel.bzimage, label="bare")     # no modules: KVM built in
    names = read_names(image.build_base(image.ImageSpec(kernel, [suite]), tmp_path / "base.cpio").read_bytes())
    assert set(names) <= ALLOWED, f"unexpected files: {sorted(set(names) - ALLOWED)}"
    with_modules = read_names(image.build_base(image.ImageSpec(fake_kernel, [suite]), tmp_path / "m.cpio").read_bytes())
    assert not not_busybox_and_suite_only(with_modules) and any(n.endswith(".ko") for n in with_modules)


def test_the_ktap_image_runs_the_suite_by_itself(tmp_path, fake_kernel, monkeypatch):
    monkeypatch.setattr(image, "BUSYBOX", Path("/bin/busybox"))
    out = tmp_path / "lava.cpio"
    assert cli.main(["image", str(fake_kernel.bzimage), "--binary", str(FAKE_SUITE), "-o", str(out),
                     "--ktap", "--", "--gtest_filter=Creation.*"]) == 0
    data = out.read_bytes()      # the base archive, then the boot layer appended to it
    layer = read_names(image.boot_layer(FAKE_SUITE.name, ["--ktap", "--gtest_filter=Creation.*"], stream="/dev/null"))
    conf = layer["etc/gmemtest/boot.conf"]
    assert data.endswith(image.boot_layer(FAKE_SUITE.name, ["--ktap", "--gtest_filter=Creation.*"], stream="/dev/null"))
    assert b"--ktap" in conf and b"Creation.*" in conf and b"GMEMTEST_STREAM=/dev/null" in conf


# -- real boots ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bzimage_and_modules() -> tuple[str, str | None]:
    """GMEMTEST_STATIC_BZIMAGE (and GMEMTEST_STATIC_MODULES when KVM is a module), else the
    vmlinuz and modules of the Debian kernel the vm tests use (GMEMTEST_VM_KERNEL, default 7.2)."""
    if os.environ.get("GMEMTEST_STATIC_BZIMAGE"):
        return os.environ["GMEMTEST_STATIC_BZIMAGE"], os.environ.get("GMEMTEST_STATIC_MODULES")
    kernel = debkernel.fetch(os.environ.get("GMEMTEST_VM_KERNEL", "7.2"))
    return str(kernel.bzimage), str(kernel.modules_dir)


@pytest.mark.vm
def test_a_bzimage_boots_the_static_suite_from_a_busybox_only_initramfs(tmp_path, bzimage_and_modules):
    suite = suite_or_skip()
    kernel_image, kernel_modules = bzimage_and_modules
    kernel = from_bzimage(Path(kernel_image), Path(kernel_modules) if kernel_modules else None, label="static")
    opts = session.RunOptions(binary=suite, out_dir=tmp_path, gtest_filter="Creation.*", accel="tcg")
    run = session.run_kernel(kernel, opts)
    names = read_names((tmp_path / "static" / "initramfs-base.cpio").read_bytes())
    assert not not_busybox_and_suite_only(names)
    assert run.hello and run.cases, run.reason
    assert not run.counts()["fail"] and run.counts()["pass"] + run.counts()["skip"] == len(run.cases), run.cases


@pytest.mark.vm
def test_the_ktap_image_prints_strict_ktap_on_a_single_console(tmp_path, bzimage_and_modules):
    suite = suite_or_skip()
    kernel_image, kernel_modules = bzimage_and_modules
    initrd = tmp_path / "ktap.cpio"
    modules = ["--modules", kernel_modules] if kernel_modules else []
    assert cli.main(["image", kernel_image, *modules, "--binary", str(suite), "-o", str(initrd), "--ktap", "--",
                     "--gtest_filter=Creation.*"]) == 0
    console = tmp_path / "console.log"
    cmd = [qemu.qemu_binary(), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
           "-accel", "tcg", "-cpu", qemu.TCG_CPU, "-m", "1024", "-kernel", kernel_image, "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 quiet", "-chardev", f"file,id=c,path={console}", "-serial", "chardev:c"]
    subprocess.run(cmd, timeout=600, capture_output=True)
    text = console.read_text(errors="replace")
    start, end = text.index("KTAP version 1"), text.index("gmemtest-done status=")
    status = int(text[end:].split("=", 1)[1].split()[0])
    lines = [l.rstrip("\r") for l in text[start:end].splitlines()
             if l.startswith(("KTAP", "1..", "ok ", "not ok ", "#"))]   # kernel and stderr lines interleave
    doc = ktap.parse("\n".join(lines) + "\n")
    assert doc.results and status == ktap.exit_code(doc)
