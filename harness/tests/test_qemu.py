"""The QEMU command line and the accelerator choice."""
from pathlib import Path

from gmemharness import qemu


def command(**machine):
    return qemu.command(qemu.MachineConfig(**machine), Path("/k/bzImage"), Path("/i/initrd"),
                        Path("/l/console.log"), Path("/l/stream.jsonl"))


def value_after(cmd, flag):
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


def test_tcg_emulates_svm_without_cx16_and_tells_the_guest_the_tsc_rate(monkeypatch):
    monkeypatch.setattr(qemu, "host_tsc_khz", lambda: 2596124)
    cmd = command(accel="tcg")
    assert value_after(cmd, "-cpu") == ["max,cx16=off"] and value_after(cmd, "-accel") == ["tcg"]
    append = value_after(cmd, "-append")[0].split()
    assert {"console=ttyS0", "panic=-1", "oops=panic", "tsc_early_khz=2596124"} <= set(append)
    assert "-no-reboot" in cmd


def test_kvm_uses_the_host_cpu_and_no_tsc_hint():
    cmd = command(accel="kvm")
    assert value_after(cmd, "-cpu") == ["host"]
    assert "tsc_early_khz" not in value_after(cmd, "-append")[0]


def test_console_and_result_port_are_the_first_and_second_serial_ports():
    cmd = command()
    assert value_after(cmd, "-chardev") == ["file,id=console,path=/l/console.log",
                                             "file,id=results,path=/l/stream.jsonl"]
    assert value_after(cmd, "-serial") == ["chardev:console", "chardev:results"]


def test_memory_is_split_over_numa_nodes_with_the_cpus_on_the_first():
    cmd = command(memory_mb=2049, cpus=2, numa_nodes=2)
    assert value_after(cmd, "-object") == ["memory-backend-ram,id=mem0,size=1025M",
                                            "memory-backend-ram,id=mem1,size=1024M"]
    assert value_after(cmd, "-numa") == ["node,nodeid=0,memdev=mem0,cpus=0-1", "node,nodeid=1,memdev=mem1"]
    assert value_after(command(numa_nodes=1), "-numa") == []


def test_auto_tries_kvm_only_where_dev_kvm_is_usable_and_no_trial_failed(monkeypatch):
    monkeypatch.setattr(qemu.os, "access", lambda path, mode: True)
    assert qemu.initial_accel("auto") == "kvm"
    qemu.remember_verdict("tcg")
    assert qemu.initial_accel("auto") == "tcg"
    assert qemu.initial_accel("kvm") == "kvm"
    monkeypatch.setattr(qemu.os, "access", lambda path, mode: False)
    qemu.remember_verdict("kvm")
    assert qemu.initial_accel("auto") == "tcg"


def test_a_scratch_disk_is_attached_as_virtio_blk_only_when_given():
    cmd = qemu.command(qemu.MachineConfig(), Path("/k/bzImage"), Path("/i/initrd"), Path("/l/console.log"),
                       Path("/l/stream.jsonl"), Path("/l/scratch.img"))
    assert value_after(cmd, "-drive") == ["file=/l/scratch.img,format=raw,if=none,id=scratch,cache=unsafe"]
    assert value_after(cmd, "-device") == ["virtio-blk-pci,drive=scratch"]
    assert "-drive" not in command()
