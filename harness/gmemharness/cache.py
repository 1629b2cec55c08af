"""The harness cache directory and all-or-nothing writes into it."""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("GMEMTEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gmemtest")
    return Path(base)


@contextlib.contextmanager
def staged_dir(final: Path):
    """Yield a temporary directory beside `final`; rename it to `final` only when the block
    finishes without an exception, so a failure never leaves a half-written cache entry."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_file(final: Path):
    """Like staged_dir, for a single file."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
