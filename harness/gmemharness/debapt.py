"""A private apt configuration for fetching Debian kernel packages.

The machine's own apt sources name the mirror; we reuse those URIs with the suites that carry
newer kernels, in a state directory of our own, so the system's apt state is never touched."""
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from . import stage_progress
from .errors import InfraError

KERNEL_SUITES = ("trixie", "trixie-backports", "forky", "sid", "experimental")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE_S = 24 * 3600


def _deb822_stanzas(text: str):
    stanza: dict[str, str] = {}
    key = None
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, None
        elif line[0].isspace() and key:
            stanza[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            stanza[key] = value.strip()


def _is_main_archive(suites: list[str]) -> bool:
    """The security and updates archives do not carry the kernel suites we want."""
    return any(not re.search(r"(-security|/updates)$", s) for s in suites)


def mirror_uris(etc_apt: Path = Path("/etc/apt")) -> list[str]:
    """Debian mirror URIs named by the machine's own apt sources, main archive only."""
    uris: list[str] = []
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        for st in _deb822_stanzas(path.read_text(errors="replace")):
            if st.get("enabled", "yes").lower() == "no" or "deb" not in st.get("types", "").split():
                continue
            if _is_main_archive(st.get("suites", "").split()):
                uris += st.get("uris", "").split()
    one_line_files = [etc_apt / "sources.list"] + sorted((etc_apt / "sources.list.d").glob("*.list"))
    for path in one_line_files:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and _is_main_archive([m.group(2)]):
                uris.append(m.group(1))
    return list(dict.fromkeys(u.rstrip("/") for u in uris))


class PrivateApt:
    """apt-get/apt-cache run against a private config under `root`."""

    def __init__(self, root: Path, uris: list[str] | None = None):
        self.root = root
        self.uris = uris if uris is not None else mirror_uris()
        if not self.uris:
            raise InfraError("no Debian mirror found in /etc/apt sources (need a deb822 URIs: line "
                             "or a 'deb URI suite' line naming the main archive)")
        self.config = root / "apt.conf"
        self._write_config()

    def _write_config(self) -> None:
        r = self.root
        for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d",
                    "apt.conf.d", "preferences.d"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        (r / "state/status").touch()
        sources = "".join(f"deb [signed-by={KEYRING}] {uri} {suite} main\n"
                          for uri in self.uris for suite in KERNEL_SUITES)
        _write_if_changed(r / "sources.list", sources)
        conf = "\n".join([
            f'Dir::State "{r}/state";',
            f'Dir::State::status "{r}/state/status";',
            f'Dir::Cache "{r}/cache";',
            f'Dir::Etc::SourceList "{r}/sources.list";',
            f'Dir::Etc::SourceParts "{r}/sources.list.d";',
            f'Dir::Etc::Parts "{r}/apt.conf.d";',
            f'Dir::Etc::Preferences "{r}/preferences";',
            f'Dir::Etc::PreferencesParts "{r}/preferences.d";',
            'Acquire::Check-Valid-Until "false";',
            'Acquire::Languages "none";',
            'APT::Architecture "amd64";',
            'APT::Architectures { "amd64"; };',
            "",
        ])
        _write_if_changed(self.config, conf)

    def env(self) -> dict[str, str]:
        return dict(os.environ, APT_CONFIG=str(self.config), LC_ALL="C")

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), env=self.env(), cwd=cwd, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise InfraError(f"{' '.join(args[:2])} failed (exit {proc.returncode}): "
                             f"{_last_lines(proc.stderr or proc.stdout)}")
        return proc

    def update(self, force: bool = False) -> None:
        stamp = self.root / "state/updated"
        fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < LISTS_MAX_AGE_S
        if fresh and not force:
            return
        proc = self.run("apt-get", "-q", "update", check=False)
        if proc.returncode != 0:
            raise InfraError(f"apt-get update with the private config {self.config} failed: "
                             f"{_last_lines(proc.stderr or proc.stdout)}")
        stamp.touch()

    def show(self, package: str) -> dict[str, str] | None:
        """The candidate version's control fields, or None when apt knows no such package.
        (apt-cache falls back to regex matching for unknown names: only an exact name counts.)"""
        proc = self.run("apt-cache", "show", "--no-all-versions", package, check=False)
        if proc.returncode != 0:
            return None
        return next((st for st in _deb822_stanzas(proc.stdout) if st.get("package") == package), None)

    def package_names(self, pattern: str) -> list[str]:
        proc = self.run("apt-cache", "pkgnames", check=False)
        return sorted(n for n in proc.stdout.split() if re.fullmatch(pattern, n))

    def download(self, packages: dict[str, str], dest: Path) -> list[Path]:
        """Download exact name=version pairs (never a pattern) into `dest`, showing progress."""
        sizes = [(self.show(n) or {}).get("size", "") for n in packages]
        total = sum(int(x) for x in sizes if x.isdigit()) or None
        names = ", ".join(packages)
        progress = stage_progress.StageProgress(f"downloading {names[:60]}", total, "B")
        cmd = ["apt-get", "-q", "download", *(f"{n}={v}" for n, v in packages.items())]
        with tempfile.TemporaryFile("w+") as out:
            status = stage_progress.run_watched(cmd, progress, lambda: (stage_progress.tree_bytes(dest), ""),
                                                env=self.env(), cwd=dest, stdout=out, stderr=subprocess.STDOUT,
                                                text=True)
            out.seek(0)
            output = out.read()
        progress.finish("done" if status == 0 else f"apt-get exited {status}")
        if status != 0:
            raise InfraError(f"apt-get download failed (exit {status}): {_last_lines(output)}")
        debs = sorted(dest.glob("*.deb"))
        if len(debs) != len(packages):
            raise InfraError(f"apt-get download gave {len(debs)} files for {len(packages)} packages")
        return debs


def unpack(deb: Path, dest: Path) -> None:
    """Extract a .deb's files under `dest` (no maintainer scripts run)."""
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise InfraError(f"cannot unpack {deb.name}: {proc.stderr.strip()}")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if "unsandboxed" not in line]
    return " | ".join(lines[-n:])
