"""Cache writes are all or nothing."""
import pytest

from gmemharness import cache


def test_a_failed_directory_write_leaves_neither_the_entry_nor_its_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with cache.staged_dir(tmp_path / "entry") as stage:
            (stage / "half").write_text("written")
            raise RuntimeError("download failed")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_file_write_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / "f").write_text("old")
    with pytest.raises(RuntimeError):
        with cache.staged_file(tmp_path / "f") as tmp:
            tmp.write_text("half")
            raise RuntimeError("build failed")
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_text() == "old"


def test_successful_writes_land_under_the_final_names(tmp_path):
    with cache.staged_dir(tmp_path / "entry") as stage:
        (stage / "vmlinuz").write_text("k")
    with cache.staged_file(tmp_path / "f") as tmp:
        tmp.write_text("new")
    assert (tmp_path / "entry/vmlinuz").read_text() == "k" and (tmp_path / "f").read_text() == "new"
