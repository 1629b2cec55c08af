#!/usr/bin/python3
"""Stands in for virtme-ng's `vng` in unit tests: records its command line in $FAKE_VNG_ARGV and
plays a fake_qemu script, the console on stdout and the stream into the file of the chardev that
--qemu-opts gives the virtio port."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_qemu  # noqa: E402


def main() -> int:
    argv = sys.argv[1:]
    with open(os.environ["FAKE_VNG_ARGV"], "w") as f:
        json.dump(argv, f)
    results = fake_qemu.chardev_paths(argv)["results"]
    sys.argv = [sys.argv[0], "-chardev", "file,id=console,path=/dev/stdout",
                "-chardev", f"file,id=results,path={results}"]
    return fake_qemu.main()


if __name__ == "__main__":
    sys.exit(main())
