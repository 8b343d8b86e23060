"""The method contract: one config check (keys, types, choices, ranges), the declared hooks,
seeded generators, and the registry's name rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pytest

from cryobench.errors import ConfigError
from cryobench.methods import PickingMethod, RunContext
from cryobench.methods.config import Range, check_values, field_ranges, parse_assignments


@dataclass
class ToyConfig:
    epochs: Annotated[int, Range(0, 1000)] = 2
    lr: Annotated[float, Range(0.0, None)] = 1e-3
    channels: Annotated[tuple[int, ...], Range(1, 512)] = (4, 8)
    schedule: Literal["cosine", "constant"] = "cosine"
    note: str | None = None

    def check(self) -> None:
        if self.epochs * max(self.channels) > 10_000:
            raise ConfigError("epochs x channels too large for a toy")


class Toy(PickingMethod):
    name = "toy"
    Config = ToyConfig

    def fit(self, train_runs, val_runs, ctx):  # pragma: no cover - not run
        pass

    def predict(self, run, ctx):  # pragma: no cover - not run
        raise NotImplementedError

    def save_state(self, directory):  # pragma: no cover - not run
        pass

    def load_state(self, directory):  # pragma: no cover - not run
        pass


@pytest.mark.parametrize("values, message", [
    ({"epoch": 3}, "method 'toy' has no config key 'epoch'; did you mean epochs?"),
    ({"zzz": 3}, "method 'toy' has no config key 'zzz'; known: channels, epochs, lr, note"),
    ({"epochs": -1}, "method 'toy', config key 'epochs': must be in \\[0, 1000\\], got -1"),
    ({"epochs": "many"}, "config key 'epochs': expected an integer, got 'many'"),
    ({"epochs": 2.5}, "config key 'epochs': expected an integer"),
    ({"lr": -0.1}, "config key 'lr': must be in \\[0, inf\\]"),
    ({"channels": (4, 100000)}, "config key 'channels': must be in \\[1, 512\\]"),
    ({"schedule": "bogus"}, "config key 'schedule': expected one of 'cosine', 'constant'"),
    ({"epochs": 1000, "channels": (512,)}, "too large for a toy"),
])
def test_one_check_with_one_wording(values, message):
    with pytest.raises(ConfigError, match=message):
        Toy.default_config("cpu", **values)


def test_the_same_check_for_command_line_strings():
    assert parse_assignments(ToyConfig, ["epochs=5", "channels=2,4", "note=none"], "toy") == {
        "epochs": 5, "channels": (2, 4), "note": None}
    with pytest.raises(ConfigError, match="config key 'epochs': must be in"):
        parse_assignments(ToyConfig, ["epochs=5000"], "toy")


def test_values_are_checked_not_rewritten():
    """Budget values keep their Python form, so a config hash never depends on 1 vs 1.0."""
    out = check_values(ToyConfig, {"lr": 1, "channels": [4, 8]}, "toy")
    assert out == {"lr": 1, "channels": [4, 8]} and isinstance(out["lr"], int)
    assert set(field_ranges(ToyConfig)) == {"epochs", "lr", "channels"}


def test_hooks_have_empty_defaults_and_instances_do_not_share_them():
    a, b = Toy(), Toy()
    assert dict(a.extra_metrics) == {} and a.slice_metrics([]) == {}
    a.extra_metrics["val"] = 1.0
    assert b.extra_metrics == {} and dict(Toy.extra_metrics) == {}


def test_rng_accepts_run_names_and_is_stable(tmp_path):
    ctx = RunContext(work_dir=tmp_path, seed=3)
    a = ctx.rng("TS_5_4").integers(0, 2**31, 4)
    b = RunContext(work_dir=tmp_path, seed=3).rng("TS_5_4").integers(0, 2**31, 4)
    c = ctx.rng("TS_6_4").integers(0, 2**31, 4)
    assert (a == b).all() and not (a == c).all()
    assert (ctx.rng(7).integers(0, 9, 3) == np.random.default_rng([3, 7]).integers(0, 9, 3)).all()
    with pytest.raises(ConfigError, match="rng salt"):
        ctx.rng(1.5)


def test_builtin_budgets_pass_the_check():
    from cryobench.methods.registry import get_method, list_methods

    for info in list_methods():
        if info.error or info.extra_missing:
            continue
        cls = get_method(info.name)
        for budget in ("smoke", "cpu", "full"):
            cls.default_config(budget)


def test_entry_point_name_must_equal_the_class_name(monkeypatch):
    import importlib.metadata as md

    from cryobench.methods import registry

    ep = md.EntryPoint("toy-alias", "test_methods_contract:Toy", registry.GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])
    (info,) = registry.list_methods()
    assert info.error and "must be equal" in info.error
    with pytest.raises(Exception, match="must be equal"):
        registry.get_method("toy-alias")
