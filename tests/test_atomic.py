"""Atomic writes: permissions follow the umask, a killed writer never blocks the next one,
concurrent writers finishing one directory all succeed."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import stat
from pathlib import Path

import pytest

import cryobench.io.atomic as atomic
from cryobench.io.atomic import atomic_dir, atomic_path, atomic_write_text, current_umask

FINISHERS = ["exchange", "rename"]
"""renameat2(RENAME_EXCHANGE) on Linux, and the portable fallback."""


@pytest.fixture(params=FINISHERS)
def finisher(request, monkeypatch):
    if request.param == "exchange" and atomic._renameat2 is None:
        pytest.skip("renameat2 is not available on this system")
    if request.param == "rename":
        monkeypatch.setattr(atomic, "_renameat2", None)
    return request.param


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        atomic_write_text(tmp_path / "record.json", "{}")
        with atomic_path(tmp_path / "weights.pt") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "site") as d:
            (d / "sub").mkdir()
            atomic_write_text(d / "sub" / "index.html", "<p>")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "record.json") == 0o666 & ~umask
    assert _mode(tmp_path / "weights.pt") == 0o666 & ~umask
    assert _mode(tmp_path / "site") == 0o777 & ~umask
    assert _mode(tmp_path / "site" / "sub") == 0o777 & ~umask
    assert _mode(tmp_path / "site" / "sub" / "index.html") == 0o666 & ~umask


@pytest.mark.allow_skip("renameat2 exists on Linux only (the portable finisher runs everywhere)")
def test_atomic_dir_replaces_and_cleans_up(tmp_path: Path, finisher):
    dest = tmp_path / "out"
    for k in range(3):
        with atomic_dir(dest) as d:
            (d / "v").write_text(str(k))
        assert (dest / "v").read_text() == str(k)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no hidden leftovers
    with pytest.raises(RuntimeError), atomic_dir(dest) as d:
        (d / "v").write_text("half")
        raise RuntimeError("boom")
    assert (dest / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.allow_skip("renameat2 exists on Linux only (the portable finisher runs everywhere)")
def test_leftover_old_folder_does_not_block_the_next_write(tmp_path: Path, finisher):
    # what a SIGKILL during an earlier replacement left behind (the old code named it so)
    dest = tmp_path / "tiny-0123456789abcdef"
    with atomic_dir(dest) as d:
        (d / "v").write_text("1")
    stale = tmp_path / f".{dest.name}.old"
    stale.mkdir()
    (stale / "junk").write_text("x")
    with atomic_dir(dest) as d:
        (d / "v").write_text("2")
    assert (dest / "v").read_text() == "2"


def _killed_during_cleanup(dest: str, use_exchange: bool) -> None:
    """Replace ``dest``, and die by SIGKILL when the old content is being deleted."""
    if not use_exchange:
        atomic._renameat2 = None
    atomic.shutil.rmtree = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    with atomic_dir(dest) as d:
        (Path(d) / "v").write_text("killed")


@pytest.mark.allow_skip("renameat2 exists on Linux only (the portable finisher runs everywhere)")
def test_sigkill_during_replacement_then_regenerate(tmp_path: Path, finisher):
    dest = tmp_path / "split"
    with atomic_dir(dest) as d:
        (d / "v").write_text("first")
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_killed_during_cleanup, args=(str(dest), finisher == "exchange"))
    p.start()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL
    assert (dest / "v").read_text() == "killed"  # the new content was in place already
    assert all(x.name.startswith(".") for x in tmp_path.iterdir() if x != dest)
    for k in range(2):  # every later regeneration works
        with atomic_dir(dest) as d:
            (d / "v").write_text(f"again {k}")
        assert (dest / "v").read_text() == f"again {k}"


def _writer(dest: str, token: int, rounds: int, barrier, use_exchange: bool, errors) -> None:
    if not use_exchange:
        atomic._renameat2 = None
    barrier.wait()
    for r in range(rounds):
        try:
            with atomic_dir(dest) as d:
                (Path(d) / "a").write_text(f"{token}:{r}")
                (Path(d) / "b").write_text(f"{token}:{r}")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            errors.put(f"{type(exc).__name__}: {exc}")


def _stress(tmp_path: Path, finisher: str, writers: int, rounds: int) -> None:
    ctx = mp.get_context("fork")
    dest = tmp_path / "out"
    barrier = ctx.Barrier(writers)
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(dest), k, rounds, barrier,
                                               finisher == "exchange", errors))
             for k in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, f"{len(failures)} of {writers * rounds} finishes failed: {failures[:3]}"
    assert all(p.exitcode == 0 for p in procs)
    assert (dest / "a").read_text() == (dest / "b").read_text()  # one writer's complete output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left behind


@pytest.mark.allow_skip("renameat2 exists on Linux only (the portable finisher runs everywhere)")
def test_concurrent_writers_finishing_one_directory(tmp_path: Path, finisher):
    _stress(tmp_path, finisher, writers=8, rounds=10)


@pytest.mark.allow_skip("renameat2 exists on Linux only (the portable finisher runs everywhere)")
@pytest.mark.slow
def test_concurrent_writers_finishing_one_directory_heavy(tmp_path: Path, finisher):
    _stress(tmp_path, finisher, writers=16, rounds=60)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_a_synthetic_project_follows_the_umask(tmp_path: Path, umask: int):
    """End to end: every file and folder `data synth` writes (config, manifest, zarr chunks,
    picks) has the umask's permissions."""
    from cryobench.data.synth import write_synthetic_project

    old = os.umask(umask)
    try:
        write_synthetic_project(tmp_path / "p", "tiny", ["TS_1"], progress=False)
    finally:
        os.umask(old)
    paths = [tmp_path / "p", *(tmp_path / "p").rglob("*")]
    wrong = [(p, oct(_mode(p))) for p in paths
             if _mode(p) != (0o777 if p.is_dir() else 0o666) & ~umask]
    assert len(paths) > 20 and not wrong, wrong[:5]
