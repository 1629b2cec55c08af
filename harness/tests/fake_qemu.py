#!/usr/bin/python3
"""Stands in for qemu-system-x86_64 in unit tests: takes QEMU's command line, finds the two
-chardev file paths (console first, then results) and plays a scripted guest into them.

$FAKE_GUEST_SCRIPTS names a JSON file holding one script per boot; each run takes (and removes)
the first. A script is a list of [action, argument] pairs:
  ["console", "line"]  ["stream", {...event...}]  ["sleep", seconds]
  ["exit", status]     ["hang", null]             ["kill", null] (dies by SIGKILL)
  ["stderr", "text"]
  ["disk", null]       writes "disk: <what the -drive file holds>" to the console
"""
import json
import os
import signal
import sys
import time


def chardev_paths(argv: list[str]) -> dict[str, str]:
    paths = {}
    for i, arg in enumerate(argv):
        if arg == "-chardev":
            fields = dict(f.split("=", 1) for f in argv[i + 1].split(",")[1:])
            paths[fields["id"]] = fields["path"]
    return paths


def drive_file(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "-drive":
            return dict(f.split("=", 1) for f in argv[i + 1].split(",") if "=" in f).get("file")
    return None


def describe_disk(path: str | None) -> str:
    if not path or not os.path.isfile(path):
        return "none"
    with open(path, "rb") as f:
        f.seek(1024 + 56)
        magic = f.read(2)
    kind = "ext4" if magic == b"\x53\xef" else "unformatted"
    return f"{kind} {os.path.getsize(path)}"


def next_script(path: str) -> list:
    with open(path) as f:
        scripts = json.load(f)
    with open(path, "w") as f:
        json.dump(scripts[1:], f)
    return scripts[0] if scripts else [["stderr", "fake_qemu: no script left"], ["exit", 1]]


def main() -> int:
    paths = chardev_paths(sys.argv[1:])
    files = {"console": open(paths["console"], "a"), "stream": open(paths["results"], "a")}
    for action, arg in next_script(os.environ["FAKE_GUEST_SCRIPTS"]):
        if action in files:
            files[action].write((arg if isinstance(arg, str) else json.dumps(arg)) + "\n")
            files[action].flush()
        elif action == "sleep":
            time.sleep(arg)
        elif action == "disk":
            files["console"].write(f"disk: {describe_disk(drive_file(sys.argv[1:]))}\n")
            files["console"].flush()
        elif action == "stderr":
            print(arg, file=sys.stderr, flush=True)
        elif action == "exit":
            return arg
        elif action == "hang":
            while True:
                time.sleep(1)
        elif action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
