"""A patch series: read it (a directory of .patch files or a b4-style mbox), apply or revert
its patches one at a time on a tree, and explain a patch that does not apply."""
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .bisect_step import BadInput

_MBOX_FROM = re.compile(rb"^From [^\s]+ +\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\s*$", re.M)
_SUBJECT = re.compile(r"^Subject: (.*(?:\n[ \t].*)*)", re.M)
_FAILED_AT = re.compile(r"^error: patch failed: (.+):(\d+)$", re.M)
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class Patch:
    index: int          # 1-based position in the series
    name: str           # file name, or "N-subject" for a patch from an mbox
    subject: str
    text: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text).hexdigest()[:16]

    def __str__(self) -> str:
        return f"patch {self.index} ({self.name}): {self.subject}"


class PatchDoesNotApply(BadInput):
    def __init__(self, patch: Patch, detail: str, git_output: str = ""):
        self.patch = patch
        self.detail = detail
        self.git_output = git_output
        super().__init__(f"{patch}\ndoes not apply: {detail}")

    def where(self) -> str:
        """One line: the file and hunk git could not place, or git's first complaint."""
        site = rejection_site(self.git_output)
        if site is None:
            lines = (self.git_output or self.detail).strip().splitlines()
            return lines[0] if lines else "git apply failed"
        path, line = site
        hunk = find_hunk(self.patch.text.decode(errors="replace"), path, line)
        header = hunk.splitlines()[0].split(" @@")[0] + " @@" if hunk else f"at line {line}"
        return f"{path} hunk {header}"


def load_series(source: Path) -> list[Patch]:
    """Patches in order: a directory's *.patch/*.diff files sorted by name, or an mbox's
    messages in file order (cover letters and messages without a diff are left out)."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix in (".patch", ".diff") and p.is_file())
        texts = [(p.name, p.read_bytes()) for p in files]
    elif source.is_file():
        texts = [(None, t) for t in split_mbox(source.read_bytes())]
    else:
        raise BadInput(f"series {source} does not exist")
    patches = []
    for name, text in texts:
        if not _has_diff(text):
            continue
        subject = _subject(text)
        index = len(patches) + 1
        patches.append(Patch(index, name or f"{index:04d}-{_slug(subject)}", subject, text))
    if not patches:
        raise BadInput(f"series {source} holds no patch (no file or message with a diff)")
    return patches


def split_mbox(data: bytes) -> list[bytes]:
    starts = [m.start() for m in _MBOX_FROM.finditer(data)]
    if not starts:
        return [data]
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def _has_diff(text: bytes) -> bool:
    return re.search(rb"^(diff --git |--- \S)", text, re.M) is not None


def _subject(text: bytes) -> str:
    m = _SUBJECT.search(text.decode(errors="replace"))
    subject = re.sub(r"\s+", " ", m.group(1)).strip() if m else "(no subject)"
    return re.sub(r"^\[[^\]]*PATCH[^\]]*\]\s*", "", subject)


def _slug(subject: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-")[:52]


def _git_apply(tree: Path, patch: Patch, *flags: str) -> subprocess.CompletedProcess:
    # The ceiling keeps git from treating an enclosing repository as the one to patch.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tree.resolve().parent))
    return subprocess.run(["git", "apply", *flags, "-"], cwd=tree, input=patch.text,
                          capture_output=True, env=env)


def apply(tree: Path, patch: Patch) -> None:
    check = _git_apply(tree, patch, "--check", "--verbose")
    if check.returncode != 0:
        output = check.stderr.decode(errors="replace")
        raise PatchDoesNotApply(patch, describe_rejection(patch, output), output)
    done = _git_apply(tree, patch)
    if done.returncode != 0:
        output = done.stderr.decode(errors="replace")
        raise PatchDoesNotApply(patch, output.strip(), output)


def revert(tree: Path, patch: Patch) -> None:
    done = _git_apply(tree, patch, "--reverse")
    if done.returncode != 0:
        raise BadInput(f"cannot revert {patch} in {tree} (was the tree changed by hand?): "
                       f"{done.stderr.decode(errors='replace').strip()}")


def move(tree: Path, patches: list[Patch], applied: int, wanted: int) -> None:
    """Bring `tree` from the first `applied` patches to the first `wanted`."""
    for patch in patches[applied:wanted]:
        apply(tree, patch)
    for patch in reversed(patches[wanted:applied]):
        revert(tree, patch)


def describe_rejection(patch: Patch, git_output: str) -> str:
    """The file, line and text of the hunk git could not place, from `git apply --check
    --verbose` output; falls back to git's own words."""
    site = rejection_site(git_output)
    if site is None:
        return git_output.strip()
    path, line = site
    hunk = find_hunk(patch.text.decode(errors="replace"), path, line)
    where = f"rejected hunk in {path} at line {line}"
    return f"{where}:\n{hunk}" if hunk else f"{where}\n{git_output.strip()}"


def rejection_site(git_output: str) -> tuple[str, int] | None:
    """(file, preimage line) of the hunk `git apply` reports it could not place."""
    m = _FAILED_AT.search(git_output)
    return (m.group(1), int(m.group(2))) if m else None


def find_hunk(patch_text: str, path: str, old_line: int) -> str | None:
    """The hunk of `path` whose preimage starts at `old_line`."""
    in_file, hunk, found = False, [], False
    for line in patch_text.splitlines():
        if line.startswith("diff --git "):
            if found:
                break
            in_file = line.endswith(f" b/{path}")
            continue
        header = _HUNK_HEADER.match(line)
        if header and in_file:
            if found:
                break
            found = int(header.group(1)) == old_line
        if found:
            if line == "-- " or (line and line[0] not in " +-@\\"):
                break
            hunk.append(line)
    return "\n".join(hunk) if hunk else None
