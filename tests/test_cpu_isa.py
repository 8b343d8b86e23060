"""The AVX2 cap on CPU kernels (cryobench/_cpu_isa.py): what it sets, what it leaves alone, and
that a CLI run under the default cap gives the bytes of a run capped by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryobench import _cpu_isa

KEYS = (*_cpu_isa.PORTABLE_ENV, _cpu_isa.NUMPY_ENV, _cpu_isa.NATIVE_SWITCH)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in KEYS}


def test_the_cap_sets_torch_and_mkl_and_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setattr(_cpu_isa, "numpy_features_above_avx2", lambda: ["X86_V4"])
    monkeypatch.delitem(sys.modules, "numpy", raising=False)  # as if numpy were not loaded
    env = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
    added = _cpu_isa.portable_cpu_kernels(env)
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE" and "ONEDNN_MAX_CPU_ISA" not in added
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_CBWR"] == "AVX2"
    assert env[_cpu_isa.NUMPY_ENV] == "X86_V4"


def test_numpy_is_left_alone_once_imported_or_when_nothing_is_above_avx2(monkeypatch):
    import numpy  # noqa: F401  (loaded: its switch is read, too late to set)

    monkeypatch.setattr(_cpu_isa, "numpy_features_above_avx2", lambda: ["X86_V4"])
    env: dict[str, str] = {}
    _cpu_isa.portable_cpu_kernels(env)
    assert _cpu_isa.NUMPY_ENV not in env
    monkeypatch.delitem(sys.modules, "numpy")
    monkeypatch.setattr(_cpu_isa, "numpy_features_above_avx2", lambda: [])
    env = {}
    _cpu_isa.portable_cpu_kernels(env)
    assert _cpu_isa.NUMPY_ENV not in env and env["MKL_CBWR"] == "AVX2"


def test_native_turns_the_cap_off():
    env = {_cpu_isa.NATIVE_SWITCH: "Native"}
    assert _cpu_isa.portable_cpu_kernels(env) == {} and set(env) == {_cpu_isa.NATIVE_SWITCH}


def test_the_numpy_probe_names_only_features_this_cpu_has_beyond_avx2(tmp_path):
    from numpy._core._multiarray_umath import __cpu_dispatch__

    feats = _cpu_isa.numpy_features_above_avx2()
    assert all(f in __cpu_dispatch__ and (f == "X86_V4" or f.startswith("AVX512"))
               for f in feats)
    no_avx512 = tmp_path / "cpuinfo"
    no_avx512.write_text("processor : 0\nflags : fpu sse2 avx avx2 fma\n")
    assert _cpu_isa._has_avx512(str(no_avx512)) is False
    no_avx512.write_text("flags : fpu avx2 avx512f avx512bw\n")
    assert _cpu_isa._has_avx512(str(no_avx512)) is True
    assert _cpu_isa._has_avx512(str(tmp_path / "missing")) is None


def test_cpuinfo_field_reads_the_first_matching_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags : fpu\n"
                    "processor\t: 1\nmodel name\t: Other\n")
    assert _cpu_isa.cpuinfo_field("model name", str(info)) == "Example CPU @ 2.0GHz"
    assert _cpu_isa.cpuinfo_field("bogomips", str(info)) is None
    info.write_text("processor : 0\n")
    assert _cpu_isa._has_avx512(str(info)) is False
    with pytest.raises(OSError):
        _cpu_isa.cpuinfo_field("flags", str(tmp_path / "missing"))


def test_the_cli_caps_before_numpy_and_torch_load():
    code = ("import os, sys, cryobench.cli; "
            "print(os.environ['ONEDNN_MAX_CPU_ISA'], 'numpy' in sys.modules, "
            "'torch' in sys.modules); from cryobench._cpu_isa import numpy_simd_level; "
            "print(numpy_simd_level())")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                         text=True, check=True, timeout=120).stdout.split()
    assert out[:3] == ["AVX2", "False", "False"]
    assert out[3] != "X86_V4"  # numpy's AVX-512 kernels are off (or absent)


def _cli_run(out: Path, env: dict[str, str]) -> tuple[bytes, dict]:
    subprocess.run([sys.executable, "-m", "cryobench", "run", "--method", "unet3d", "--split",
                    "tiny", "--budget", "smoke", "--out", str(out), "--no-progress"],
                   env=env, capture_output=True, check=True, timeout=600)
    (rec,) = out.glob("tiny/unet3d/*/seed-0/record.json")
    return (rec.parent / "predictions.csv").read_bytes(), json.loads(rec.read_text())


def test_a_default_cli_run_equals_one_capped_by_hand(tmp_path):
    """On an AVX-512 CPU this is the check that matters; elsewhere both runs are AVX2 anyway."""
    pytest.importorskip("torch")
    default, rec = _cli_run(tmp_path / "default", _clean_env())
    by_hand = {**_clean_env(), **_cpu_isa.PORTABLE_ENV}
    feats = _cpu_isa.numpy_features_above_avx2()
    if feats:
        by_hand[_cpu_isa.NUMPY_ENV] = " ".join(feats)
    capped, rec2 = _cli_run(tmp_path / "by-hand", by_hand)
    assert default == capped
    assert rec["dataset_fingerprint"] == rec2["dataset_fingerprint"]
    env = rec["environment"]
    assert env["cpu_kernels"]["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["numpy_simd"] != "X86_V4"


def test_effective_kernels_are_the_same_on_avx2_and_avx512_machines_under_the_cap(monkeypatch):
    """What a resumed run and verify compare does not name the features an AVX-512 CPU had to
    switch off, so an AVX2 machine can resume (and verify) its runs."""
    monkeypatch.setattr(_cpu_isa, "numpy_simd_level", lambda: "X86_V3")
    avx512 = {**_cpu_isa.PORTABLE_ENV, _cpu_isa.NUMPY_ENV: "X86_V4 AVX512_ICL"}
    avx2 = dict(_cpu_isa.PORTABLE_ENV)
    assert _cpu_isa.effective_kernels(avx512) == _cpu_isa.effective_kernels(avx2)
    assert _cpu_isa.effective_kernels({_cpu_isa.NATIVE_SWITCH: "native"}) != \
        _cpu_isa.effective_kernels(avx2)
    from cryobench.runner.verify import _effective

    rec = {"cpu_kernels": _cpu_isa.kernel_settings(avx512), "numpy_simd": "X86_V3"}
    new = {"cpu_kernels": _cpu_isa.kernel_settings(avx2), "numpy_simd": "X86_V3"}
    assert _effective(rec) == _effective(new)
    assert _effective({}) is None
