"""Simulated benchmark results with a known true score, to measure intervals and tests.

A *scenario* is a population of test tomograms and a method-skill model. Each replicate draws
``n`` test tomograms (particle counts per class vary with crowding; a difficulty shared by every
method and seed shifts recall and false positives) and, for each method, ``S`` trained models
(a seed shifts the model's recall, overall and per class, and its false-positive rate per class;
a model-by-tomogram term adds the rest). Counts follow: ``tp ~ Binomial(refs, p_hit)``,
``fn = refs - tp``, ``fp ~ Poisson``; for the BYU task one motor or none per tomogram, a hit
or a miss, a false detection or none. :func:`pick_tables` writes counts out as pick and
ground-truth tables that the real scorers turn back into the same counts.

The true score of a trained model is the score of its *expected* counts on the tomogram
population (micro-summing over infinitely many tomograms); the true score of a method is the
mean of that over seeds (:func:`true_scores`), which is what the seed-mean score of an entry
estimates. Expectations over tomograms are exact (Gauss-Hermite); the mean over seeds is a
Monte Carlo average over many draws.

Used by ``benchmarks/bench_coverage.py`` and by the statistics tests; nothing here is ever shown
as a result of a real method.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from cryobench.particles import CZII_PARTICLES
from cryobench.report.stats import CountCube, scores_from_sums

__all__ = ["ClassSkill", "Scenario", "Replicate", "czii_scenario", "byu_scenario", "simulate",
           "true_scores", "model_true_scores", "cube_of", "pick_tables"]


@dataclass(frozen=True)
class ClassSkill:
    """One class: its weight, mean references per tomogram, base recall and FP rate.

    ``fp_rate`` is false positives per reference for particles, and the probability of a false
    detection on a tomogram without a motor for the BYU task.
    """

    name: str
    weight: float
    mean_refs: float
    recall: float
    fp_rate: float


@dataclass(frozen=True)
class Scenario:
    """A tomogram population and a method-skill model (standard deviations on the logit scale).

    Attributes:
        task: ``"czii"`` (particles, counts per class) or ``"byu"`` (one motor or none).
        classes: the classes and the method's base skill on each.
        beta: F-beta parameter of the score.
        crowding_cv: coefficient of variation of the particle density across tomograms.
        tomo_sd, tomo_class_sd: tomogram difficulty shared by all methods and seeds (overall and
            per class); a hard tomogram lowers recall and raises false positives
            (``fp_coupling``).
        seed_sd, seed_class_sd, seed_fp_sd: a trained model's shift of recall (overall, per
            class) and of the log false-positive rate (per class).
        interaction_sd: per (model, tomogram) shift of recall.
        motor_fraction: for ``byu``, the share of tomograms with a motor.
    """

    task: str
    classes: tuple[ClassSkill, ...]
    beta: float
    crowding_cv: float = 0.25
    tomo_sd: float = 0.35
    tomo_class_sd: float = 0.2
    fp_coupling: float = 0.5
    seed_sd: float = 0.25
    seed_class_sd: float = 0.2
    seed_fp_sd: float = 0.25
    interaction_sd: float = 0.15
    motor_fraction: float = 0.5

    @property
    def weights(self) -> dict[str, float]:
        return {c.name: c.weight for c in self.classes}

    def shifted(self, recall_shift: float) -> Scenario:
        """The same scenario for a method whose recall logit is ``recall_shift`` higher."""
        lg = _logit(np.array([c.recall for c in self.classes])) + recall_shift
        rec = 1 / (1 + np.exp(-lg))
        return replace(self, classes=tuple(replace(c, recall=float(r))
                                           for c, r in zip(self.classes, rec, strict=True)))


def czii_scenario(**overrides: float) -> Scenario:
    """Six CZII classes with the official weights, at a v2-like difficulty (weighted F4 ~0.7).

    Mean references per tomogram follow the committed czii-synth records; recall and FP rates
    put the easy classes (apo-ferritin, ribosome, VLP) near 0.9 and the hard ones lower.
    """
    skill = {"apo-ferritin": (50, 0.88, 0.3), "beta-amylase": (14, 0.3, 1.0),
             "beta-galactosidase": (12, 0.55, 1.5), "ribosome": (45, 0.9, 0.2),
             "thyroglobulin": (22, 0.6, 1.0), "virus-like-particle": (10, 0.9, 0.1)}
    classes = tuple(ClassSkill(p.name, p.weight, *skill[p.name]) for p in CZII_PARTICLES)
    return replace(Scenario("czii", classes, 4.0), **overrides)


def byu_scenario(**overrides: float) -> Scenario:
    """The BYU motor task: half the tomograms with a motor, F2, a cnn_regressor-like skill."""
    classes = (ClassSkill("flagellar-motor", 1.0, 1.0, 0.75, 0.3),)
    return replace(Scenario("byu", classes, 2.0, crowding_cv=0.0, tomo_sd=0.6,
                            tomo_class_sd=0.0, seed_sd=0.4, seed_class_sd=0.0, seed_fp_sd=0.4,
                            interaction_sd=0.3), **overrides)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@dataclass
class Replicate:
    """One simulated benchmark: counts and the latent effects of each trained model.

    Attributes:
        counts: int64 ``(methods, seeds, tomograms, classes, 3)`` holding ``tp, fp, fn``.
        recall_shift: ``(methods, seeds, classes)`` each model's shift of the recall logit
            (seed effects plus the method's shift).
        fp_shift: ``(methods, seeds, classes)`` each model's shift of the log FP rate.
    """

    scenario: Scenario
    counts: np.ndarray
    recall_shift: np.ndarray
    fp_shift: np.ndarray
    method_shifts: tuple[float, ...] = field(default=())


def _model_effects(sc: Scenario, rng: np.random.Generator, m: int, s: int,
                   shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = len(sc.classes)
    rs = (sc.seed_sd * rng.standard_normal((m, s, 1))
          + sc.seed_class_sd * rng.standard_normal((m, s, k)) + shifts[:, None, None])
    fs = sc.seed_fp_sd * rng.standard_normal((m, s, k))
    return rs, fs


def simulate(sc: Scenario, n_tomograms: int, n_seeds: int, rng: np.random.Generator,
             method_shifts: tuple[float, ...] = (0.0, 0.0)) -> Replicate:
    """Draw one replicate: ``len(method_shifts)`` methods × ``n_seeds`` models × tomograms.

    ``method_shifts`` are the methods' recall-logit shifts (all 0: a true null).
    """
    m, s, n, k = len(method_shifts), n_seeds, n_tomograms, len(sc.classes)
    base_r = _logit(np.array([c.recall for c in sc.classes]))
    base_f = np.array([c.fp_rate for c in sc.classes])
    lam = np.array([c.mean_refs for c in sc.classes])
    d = sc.tomo_sd * rng.standard_normal((n, 1)) + sc.tomo_class_sd * rng.standard_normal((n, k))
    if sc.task == "byu":
        refs = (rng.random((n, k)) < sc.motor_fraction).astype(np.int64)
    else:
        cv = sc.crowding_cv
        v = rng.gamma(1 / cv**2, cv**2, size=(n, 1)) if cv > 0 else np.ones((n, 1))
        refs = rng.poisson(lam * v)
    rs, fs = _model_effects(sc, rng, m, s, np.asarray(method_shifts, dtype=np.float64))
    x = sc.interaction_sd * rng.standard_normal((m, s, n, 1))
    p_hit = _sigmoid(base_r + rs[:, :, None, :] + d[None, None] + x)
    tp = rng.binomial(np.broadcast_to(refs, p_hit.shape), p_hit)
    fn = refs[None, None] - tp
    if sc.task == "byu":
        q = _sigmoid(_logit(base_f) + fs[:, :, None, :] - sc.fp_coupling * d[None, None])
        fp = ((rng.random(q.shape) < q) & (refs[None, None] == 0)).astype(np.int64)
    else:
        rate = (base_f * lam * (v if sc.crowding_cv > 0 else 1.0))[None, None] * np.exp(
            fs[:, :, None, :] - sc.fp_coupling * d[None, None])
        fp = rng.poisson(rate)
    counts = np.stack([tp, fp, fn], axis=-1).astype(np.int64)
    return Replicate(sc, counts, rs, fs, tuple(method_shifts))


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(32)
_GH_W = _GH_W / _GH_W.sum()


def model_true_scores(sc: Scenario, recall_shift: np.ndarray, fp_shift: np.ndarray) -> np.ndarray:
    """True score of trained models with the given shifts (``(..., classes)`` each)."""
    base_r = _logit(np.array([c.recall for c in sc.classes]))
    base_f = np.array([c.fp_rate for c in sc.classes])
    lam = np.array([c.mean_refs for c in sc.classes])
    sd_d = np.hypot(sc.tomo_sd, sc.tomo_class_sd)
    sd_hit = np.sqrt(sd_d**2 + sc.interaction_sd**2)
    # E over tomograms of sigmoid(a + Z sd) by Gauss-Hermite
    a = base_r + recall_shift
    hit = (_sigmoid(a[..., None] + sd_hit * _GH_X) * _GH_W).sum(-1)
    if sc.task == "byu":
        pi = sc.motor_fraction
        f = _logit(base_f) + fp_shift
        q = (_sigmoid(f[..., None] - sc.fp_coupling * sd_d * _GH_X) * _GH_W).sum(-1)
        tp, fn, fp = pi * hit, pi * (1 - hit), (1 - pi) * q
    else:
        tp, fn = lam * hit, lam * (1 - hit)
        fp = base_f * lam * np.exp(fp_shift) * np.exp((sc.fp_coupling * sd_d) ** 2 / 2)
    sums = np.stack([tp, fp, fn], axis=-1)
    w = np.array([c.weight for c in sc.classes])
    return scores_from_sums(sums, w, float(w.sum()), sc.beta,
                            "byu" if sc.task == "byu" else "czii")


def true_scores(sc: Scenario, method_shifts: tuple[float, ...] = (0.0,), n_draws: int = 200_000,
                seed: int = 12345) -> np.ndarray:
    """True score of each method: the mean over seeds of its models' true scores."""
    rng = np.random.default_rng(seed)
    rs, fs = _model_effects(sc, rng, 1, n_draws, np.zeros(1))
    base = []
    for shift in method_shifts:
        base.append(float(model_true_scores(sc, rs[0] + shift, fs[0]).mean()))
    return np.array(base)


def cube_of(rep: Replicate, method: int, n_tomograms: int | None = None,
            n_seeds: int | None = None) -> CountCube:
    """A :class:`CountCube` of one method's first ``n_seeds`` models on the first tomograms."""
    c = rep.counts[method]
    s = c.shape[0] if n_seeds is None else n_seeds
    n = c.shape[1] if n_tomograms is None else n_tomograms
    sc = rep.scenario
    w = np.array([x.weight for x in sc.classes])
    return CountCube(list(range(s)), [f"TS_{i:03d}" for i in range(n)],
                     [x.name for x in sc.classes], np.ascontiguousarray(c[:s, :n]), w,
                     float(w.sum()), sc.beta, "byu" if sc.task == "byu" else "czii")


_SPACING = 400.0  # Å between slots of the placement lattice (> 2 x the largest threshold)


def pick_tables(rep: Replicate, rng: np.random.Generator,
                duplicate_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The replicate's counts as a CZII submission and solution (one experiment per model ×
    tomogram, named ``m<M>s<S>|TS_<i>``), or as BYU tables for the ``byu`` task.

    CZII: references and false positives sit on distinct slots of a jittered lattice (so no
    false positive lands near a reference); each hit reference gets a pick within 0.4 × its
    radius; a share of the false positives are duplicates near hit references (false positives
    under the Kaggle rule). ``czii_score(..., per_experiment=True)`` returns exactly ``counts``.
    """
    if rep.scenario.task == "byu":
        return _byu_tables(rep, rng)
    from cryobench.particles import czii_radii

    radii = czii_radii()
    names = [c.name for c in rep.scenario.classes]
    m, s, n, k, _ = rep.counts.shape
    grid = np.stack(np.meshgrid(np.arange(15), np.arange(15), np.arange(4), indexing="ij"),
                    axis=-1).reshape(-1, 3) * _SPACING + 300.0
    sol_parts: list[tuple[str, str, np.ndarray]] = []
    sub_parts: list[tuple[str, str, np.ndarray]] = []
    for mi in range(m):
        for si in range(s):
            for ti in range(n):
                exp = f"m{mi}s{si}|TS_{ti:03d}"
                c = rep.counts[mi, si, ti]
                refs = c[:, 0] + c[:, 2]
                n_dup = np.minimum(c[:, 1], np.round(duplicate_fraction * c[:, 1]).astype(int))
                n_dup = np.where(c[:, 0] > 0, n_dup, 0)
                n_rand = c[:, 1] - n_dup
                need = int(refs.sum() + n_rand.sum())
                if need > len(grid):
                    raise ValueError(f"{need} objects do not fit the placement lattice")
                slots = grid[rng.permutation(len(grid))[:need]]
                slots = slots + rng.uniform(-40, 40, size=slots.shape)
                pos = 0
                for j in range(k):
                    r = radii[names[j]]
                    ref_xyz = slots[pos:pos + refs[j]]
                    pos += refs[j]
                    fp_xyz = slots[pos:pos + n_rand[j]]
                    pos += n_rand[j]
                    hit = ref_xyz[:c[j, 0]]
                    picks = [hit + _jitter(rng, len(hit), 0.4 * r), fp_xyz]
                    if n_dup[j]:
                        near = hit[rng.integers(0, len(hit), n_dup[j])]
                        picks.append(near + _jitter(rng, n_dup[j], 0.4 * r))
                    sol_parts.append((exp, names[j], ref_xyz))
                    sub_parts.append((exp, names[j], np.concatenate(picks)))
    return _frame(sub_parts), _frame(sol_parts)


def _jitter(rng: np.random.Generator, count: int, max_r: float) -> np.ndarray:
    v = rng.standard_normal((count, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-12
    return v * rng.uniform(0, max_r, size=(count, 1))


def _frame(parts: list[tuple[str, str, np.ndarray]]) -> pd.DataFrame:
    sizes = [len(xyz) for _, _, xyz in parts]
    xyz = np.concatenate([p[2] for p in parts]) if parts else np.empty((0, 3))
    return pd.DataFrame({"experiment": np.repeat([p[0] for p in parts], sizes),
                         "particle_type": np.repeat([p[1] for p in parts], sizes),
                         "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})


def _byu_tables(rep: Replicate, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    m, s, n, _, _ = rep.counts.shape
    c = rep.counts[..., 0, :].reshape(-1, 3)
    ids = [f"m{mi}s{si}|tomo_{ti:03d}" for mi in range(m) for si in range(s) for ti in range(n)]
    motor = (c[:, 0] + c[:, 2]) > 0
    spacing = np.full(len(ids), 10.0)
    loc = rng.uniform(100, 200, size=(len(ids), 3))
    sol = pd.DataFrame({"tomo_id": ids, "Motor axis 0": np.where(motor, loc[:, 0], -1),
                        "Motor axis 1": np.where(motor, loc[:, 1], -1),
                        "Motor axis 2": np.where(motor, loc[:, 2], -1),
                        "Voxel spacing": spacing, "Has motor": motor.astype(int)})
    pred = np.full((len(ids), 3), -1.0)
    hit = c[:, 0] == 1
    pred[hit] = loc[hit] + _jitter(rng, int(hit.sum()), 50.0)  # within 1000 Å / 10 Å
    far = motor & ~hit & (rng.random(len(ids)) < 0.5)  # half the misses predict far away
    pred[far] = loc[far] + 400.0
    fp = c[:, 1] == 1
    pred[fp] = rng.uniform(100, 200, size=(int(fp.sum()), 3))
    sub = pd.DataFrame({"tomo_id": ids, "Motor axis 0": pred[:, 0], "Motor axis 1": pred[:, 1],
                        "Motor axis 2": pred[:, 2]})
    return sub, sol
