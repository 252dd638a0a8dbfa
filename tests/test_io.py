"""augrobust._io: atomic writes."""

from __future__ import annotations

import os
import stat

from augrobust._io import atomic_write_bytes, atomic_write_text, remove_stale_temporaries


def test_an_atomic_file_gets_the_permissions_of_any_new_file(tmp_path):
    # mkstemp's 0o600 would survive os.replace: a checkpoint or a generated dataset unreadable to the group.
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.json", "{}")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_bytes(tmp_path / "a.bin", b"old")

    class Boom(Exception):
        pass

    try:
        from augrobust._io import atomic_open

        with atomic_open(path) as f:
            f.write(b"new, half written")
            raise Boom
    except Boom:
        pass
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".ckpt.pt.abc123.tmp").write_bytes(b"torn")
    (tmp_path / "ckpt.pt").write_bytes(b"whole")
    removed = remove_stale_temporaries(tmp_path, "ckpt.pt")
    assert [p.name for p in removed] == [".ckpt.pt.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
