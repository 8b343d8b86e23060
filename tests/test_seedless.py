"""Methods that ignore the seed (template matching): the record says so, the board shows one
seed as the whole story (no "missing seeds" flag) and the paired comparison treats its seed
spread as zero rather than unknown."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryobench.errors import ResultsError
from cryobench.report.stats import CountCube, paired_comparison, rank_cubes, score_interval
from cryobench.runner.record import RunRecord
from cryobench.testing.records import fake_record, record_path


def _cube(seeds, level, seedless=False, n_exp=12, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in seeds:
        r = []
        for e in range(n_exp):
            tp = int(rng.binomial(20, level))
            r.append({"experiment": f"TS_{e}", "particle_type": "ribosome", "tp": tp,
                      "fp": int(rng.poisson(3)), "fn": 20 - tp})
        rows.append(r)
    cube = CountCube.from_rows(list(seeds), rows, {"ribosome": 1.0}, 4.0)
    cube.seedless = seedless
    return cube


def test_a_seedless_entry_is_compared_with_zero_seed_spread():
    good = _cube([0], 0.95, seedless=True)
    bad = _cube([0, 1, 2], 0.5, seed=1)
    c = paired_comparison(good, bad)
    assert c.includes_seed_spread and c.n_seeds_a == 1 and np.isfinite(c.p_t)
    r = rank_cubes([good, bad], n_flips=999)
    assert r.ranks == [1, 2] and "fewer than two seeds" not in r.reason
    # the same single model, not declared seedless, says nothing about the method
    plain = _cube([0], 0.95)
    r = rank_cubes([plain, bad], n_flips=999)
    assert r.ranks == [1, 1] and "fewer than two seeds" in r.reason
    assert score_interval(good).includes_seed_spread
    assert not score_interval(plain).includes_seed_spread


def test_the_record_carries_seeded_false_and_old_records_are_seeded(tmp_path):
    rec = fake_record("template_match", split="czii-synth-v2", seed=0)
    assert rec.seeded and "seeded" not in rec.to_dict()  # the default is not written
    rec.seeded = False
    path = rec.save(record_path(tmp_path, rec))
    data = json.loads(path.read_text())
    assert data["seeded"] is False and RunRecord.load(path).seeded is False
    data["seeded"] = "no"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match="'seeded' should be"):
        RunRecord.load(path)


def test_the_board_ranks_a_seedless_entry_without_flagging_missing_seeds(tmp_path):
    from cryobench.report.site import leaderboard_entries, load_entries

    results = tmp_path / "results"
    exps = [f"TS_{k}" for k in range(12)]  # enough for the sign flip to reach p < 0.05
    for seed in (0, 1, 2):
        r = fake_record("unet3d", split="czii-synth-v2", seed=seed, skill=0.4, experiments=exps)
        r.save(record_path(results, r))
    tm = fake_record("template_match", split="czii-synth-v2", seed=0, skill=0.95,
                     config={"angular_step": 30.0}, experiments=exps)
    tm.seeded = False
    tm.save(record_path(results, tm))
    other = fake_record("vnet_per_particle", split="czii-synth-v2", seed=0, skill=0.6,
                        experiments=exps)
    other.save(record_path(results, other))
    entries = {e.method: e for e in leaderboard_entries(load_entries([results], n_flips=999))}
    assert not entries["template_match"].flagged and entries["template_match"].rank == 1
    assert entries["unet3d"].rank == 2  # separated from the seedless entry
    assert entries["vnet_per_particle"].flagged  # a seeded method with one seed of three
    assert any("missing seed" in f for f in entries["vnet_per_particle"].flags)


def test_template_match_records_that_it_ignores_the_seed():
    from cryobench.methods.registry import get_method

    assert get_method("template_match").seeded is False
    assert get_method("unet3d").seeded is True
