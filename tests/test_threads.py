"""The metrics' thread pool: size from the environment, results in order, errors re-raised."""

from __future__ import annotations

import os
import threading

import pytest

from cryobench import _threads


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), ("0", 1), ("-2", 1)])
def test_num_threads_follows_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", value)
    assert _threads.num_threads() == expected


def test_an_unusable_value_means_the_default(monkeypatch):
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", "many")
    assert 1 <= _threads.num_threads() <= 8


@pytest.mark.parametrize("n", ["1", "2"])
def test_run_concurrently_keeps_the_order_of_the_calls(monkeypatch, n):
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", n)
    assert _threads.run_concurrently((pow, 2, 3), (divmod, 7, 2), (str, 5)) == [8, (3, 1), "5"]
    assert _threads.run_concurrently() == []


@pytest.mark.parametrize("n", ["1", "2"])
def test_an_error_in_a_pool_call_is_raised_by_result(monkeypatch, n):
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", n)
    fut = _threads.submit(int, "not a number")
    with pytest.raises(ValueError, match="invalid literal"):
        fut.result()


def test_one_thread_runs_in_the_caller(monkeypatch):
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", "1")
    assert _threads.submit(threading.current_thread).result() is threading.current_thread()


def test_two_threads_use_the_pool_and_a_nested_submit_runs_inline(monkeypatch):
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", "2")

    def nested():
        inner = _threads.submit(threading.current_thread).result()
        return threading.current_thread(), inner

    outer, inner = _threads.submit(nested).result()
    assert outer is not threading.current_thread()
    assert outer.name.startswith("cryobench")
    assert inner is outer  # ran inline in the pool thread, not queued behind it


@pytest.mark.allow_skip("platforms without os.fork")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_working_pool(monkeypatch):
    """The parent's pool threads do not survive a fork; the child must not wait on them."""
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", "2")
    assert _threads.run_concurrently((pow, 2, 2), (pow, 3, 2)) == [4, 9]  # pool exists
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only when the pool works
        code = 1
        try:
            fut = _threads.submit(pow, 2, 10)
            code = 0 if fut.result(timeout=20) == 1024 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
