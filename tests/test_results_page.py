"""docs/results.md's generator (leaderboards/results_page.py) on fabricated records: the ranked
board, the per-seed table with the untrained reference, verification and the rerun's progress."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _page():
    spec = importlib.util.spec_from_file_location(
        "results_page", ROOT / "leaderboards" / "results_page.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["results_page"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_the_page_is_built_from_the_records(tmp_path, monkeypatch):
    from cryobench.testing.records import fake_record, record_path

    rp = _page()
    results, refs, ver = tmp_path / "results", tmp_path / "refs", tmp_path / "verification"
    scores = {}
    for seed in (0, 1, 2):
        for method, skill in (("unet3d", 0.8), ("deepfindet", 0.5)):
            rec = fake_record(method, split="czii-synth-v2", seed=seed, skill=skill)
            rec.save(record_path(results, rec))
            scores[(method, seed)] = rec.score
    ref = fake_record("unet3d", split="czii-synth-v2", seed=0, skill=0.05,
                      config={"epochs": 0})
    ref.save(record_path(refs, ref))
    (ver / "czii-synth-v2").mkdir(parents=True)
    (ver / "czii-synth-v2" / "unet3d-abc.txt").write_text(
        "$ cryobench verify leaderboards/results/x\nverified: x: predictions are byte-identical"
        " (score 0.8)\nexit 0; 412 s; 2026-12-02\n")
    monkeypatch.setattr(rp, "RESULTS", results)
    monkeypatch.setattr(rp, "REFERENCES", refs)
    monkeypatch.setattr(rp, "VERIFICATION", ver)
    text = rp.build(n_flips=0)
    assert "## `czii-synth-v2` (5 test tomograms; czii)" in text
    row = next(line for line in text.splitlines() if line.startswith("| `unet3d` | 0, 1, 2"))
    assert " / ".join(f"{scores[('unet3d', s)]:.3f}" for s in (0, 1, 2)) in row
    assert f"| {ref.score:.3f} |" in row  # the untrained reference beside it
    assert ("| czii-synth-v2 | `unet3d` | `leaderboards/results/x` | byte-identical | 412 s |"
            in text)
    assert "## The rerun" in text and "of the" in text and "planned" in text
    assert "none has a manifest" in text  # no ablation yet
    out = tmp_path / "results.md"
    assert rp.main(["--flips", "0", "-o", str(out)]) == 0 and out.read_text() == text
