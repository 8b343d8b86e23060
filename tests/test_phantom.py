"""Tests of the synthetic phantom generator (cryobench.data.phantom)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.fft as sfft

from cryobench.coords import ROTATION_COLUMNS, angstrom_to_index, in_bounds, picks_to_voxels
from cryobench.data.phantom import (
    PRESETS,
    Optics,
    Phantom,
    PhantomSpec,
    apply_optics,
    generate_tomogram,
    tomogram_pyramid,
    transfer_function,
    wedge_mask,
)
from cryobench.errors import ConfigError
from cryobench.particles import BYU_MOTOR, CZII_PARTICLES, czii_radii

TINY = PRESETS["tiny"]
# a czii-like preset small enough for tests but with realistic crowding and all the clutter
MIDI = dataclasses.replace(
    PRESETS["czii"], name="midi", shape=(64, 160, 160),
    counts=((8, 10), (3, 4), (3, 4), (4, 6), (3, 5), (1, 3)), clutter=(40, 60), vesicles=(0, 1),
)
SMALL_BYU = dataclasses.replace(PRESETS["byu"], name="byu-small", shape=(64, 128, 128))


def test_presets_match_the_brief():
    assert set(PRESETS) == {"czii", "byu", "tiny", "tiny-byu", "czii-v2", "byu-v2", "tiny-v2"}
    czii = PRESETS["czii"]
    assert czii.shape == (184, 630, 630) and czii.voxel_spacing == 10.0
    assert [p.name for p in czii.particles] == [p.name for p in CZII_PARTICLES]
    assert PRESETS["byu"].task == "motor" and PRESETS["byu"].particles == (BYU_MOTOR,)
    assert all(lo >= 1 for lo, _ in TINY.counts)


def test_volume_shape_dtype_and_normalisation():
    ph = generate_tomogram(TINY, 0)
    assert isinstance(ph, Phantom)
    assert ph.volume.shape == TINY.shape and ph.volume.dtype == np.float32
    assert abs(float(ph.volume.mean())) < 1e-4
    assert float(ph.volume.std()) == pytest.approx(1.0, abs=1e-4)
    assert ph.voxel_spacing == TINY.voxel_spacing
    assert list(ph.picks.columns) == ["particle_type", "x", "y", "z", *ROTATION_COLUMNS]
    assert ph.clean is None and list(ph.tomograms) == ["denoised"]
    assert ph.meta["counts"] == ph.picks.groupby("particle_type").size().to_dict()
    json.dumps(ph.meta)
    json.dumps(generate_tomogram(SMALL_BYU, 0, has_motor=True).meta)
    json.dumps(dataclasses.asdict(PRESETS["czii"]))


def test_same_seed_is_bit_identical_and_seeds_differ():
    a = generate_tomogram(TINY, 7)
    b = generate_tomogram(TINY, 7)
    c = generate_tomogram(TINY, 8)
    assert a.volume.tobytes() == b.volume.tobytes()
    assert a.picks.equals(b.picks)
    assert a.meta == b.meta
    assert not np.array_equal(a.volume, c.volume)
    assert not a.picks.equals(c.picks)


def test_seed_sequence_is_not_consumed():
    ss = np.random.SeedSequence(1234).spawn(3)[1]
    a = generate_tomogram(TINY, ss)
    b = generate_tomogram(TINY, ss)
    assert a.volume.tobytes() == b.volume.tobytes()
    other = generate_tomogram(TINY, np.random.SeedSequence(1234).spawn(3)[2])
    assert not np.array_equal(a.volume, other.volume)


def test_snr_override_keeps_the_scene():
    a = generate_tomogram(TINY, 3, snr=0.05)
    b = generate_tomogram(TINY, 3, snr=5.0)
    assert a.picks.equals(b.picks)
    assert a.meta["snr"] == 0.05 and b.meta["snr"] == 5.0


@pytest.mark.parametrize("seed", range(5))
def test_tiny_holds_every_class(seed):
    ph = generate_tomogram(TINY, seed)
    assert set(ph.picks.particle_type) == {p.name for p in CZII_PARTICLES}


@pytest.mark.parametrize("spec,seed", [(TINY, 0), (TINY, 1), (MIDI, 0), (MIDI, 1)])
def test_picks_inside_and_not_overlapping(spec, seed):
    ph = generate_tomogram(spec, seed)
    s = ph.voxel_spacing
    assert in_bounds(angstrom_to_index(ph.picks[["x", "y", "z"]].to_numpy(), s), spec.shape).all()
    # the whole particle (class radius) lies inside the volume
    zyx = picks_to_voxels(ph.picks, s)
    r = ph.picks.particle_type.map(czii_radii()).to_numpy() / s
    assert np.all(zyx - r[:, None] >= -1e-9)
    assert np.all(zyx + r[:, None] <= np.array(spec.shape) - 1 + 1e-9)
    xyz = ph.picks[["x", "y", "z"]].to_numpy()
    ra = ph.picks.particle_type.map(czii_radii()).to_numpy()
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    need = ra[:, None] + ra[None]
    np.fill_diagonal(d, np.inf)
    assert np.all(d >= need - 1e-6)
    requested = ph.meta["requested_counts"]
    placed = ph.meta["counts"]
    assert all(placed[k] <= requested[k] for k in requested)


def test_midi_counts_follow_spec():
    ph = generate_tomogram(MIDI, 2)
    for p, (lo, hi) in zip(MIDI.particles, MIDI.counts, strict=True):
        assert ph.meta["requested_counts"][p.name] in range(lo, hi + 1)
        assert 1 <= ph.meta["counts"][p.name] <= hi


@pytest.mark.parametrize("snr", [0.05, 0.5, 3.0])
def test_snr_is_as_requested(snr):
    ph = generate_tomogram(MIDI, 4, snr=snr, keep_clean=True)
    noise = ph.volume.astype(np.float64) - ph.clean
    measured = ph.clean.var() / noise.var()
    assert measured == pytest.approx(snr, rel=0.03)
    assert float(ph.volume.std()) == pytest.approx(1.0, abs=1e-4)


def test_noise_is_gaussian_and_ramp_shaped():
    ph = generate_tomogram(MIDI, 5, snr=0.1, keep_clean=True)
    noise = (ph.volume.astype(np.float64) - ph.clean).ravel()
    z = (noise - noise.mean()) / noise.std()
    assert abs(float(np.mean(z**4)) - 3.0) < 0.1  # excess kurtosis ~ 0
    assert abs(float(np.mean(z**3))) < 0.05
    # power rises with |k|: compare a low and a high shell (outside the wedge)
    spec = np.abs(sfft.rfftn(noise.reshape(MIDI.shape))) ** 2
    k = np.sqrt(
        sfft.fftfreq(MIDI.shape[0])[:, None, None] ** 2
        + sfft.fftfreq(MIDI.shape[1])[None, :, None] ** 2
        + sfft.rfftfreq(MIDI.shape[2])[None, None, :] ** 2
    )
    inside = wedge_mask(
        sfft.fftfreq(MIDI.shape[0])[:, None, None], sfft.rfftfreq(MIDI.shape[2])[None, None, :], 60
    ) & np.ones(spec.shape, dtype=bool)
    low = spec[inside & (k > 0.08) & (k < 0.12)].mean()
    high = spec[inside & (k > 0.36) & (k < 0.40)].mean()
    assert high / low == pytest.approx(0.38 / 0.10, rel=0.2)


def test_missing_wedge_is_empty():
    ph = generate_tomogram(MIDI, 6)
    spec = np.abs(sfft.rfftn(ph.volume.astype(np.float64))) ** 2
    kz = sfft.fftfreq(MIDI.shape[0])[:, None, None]
    kx = sfft.rfftfreq(MIDI.shape[2])[None, None, :]
    shape = np.ones(spec.shape, dtype=bool)
    deep_in_wedge = (np.abs(kz) > np.tan(np.deg2rad(65)) * np.abs(kx)) & shape
    sampled = wedge_mask(kz, kx, 60) & shape
    assert spec[deep_in_wedge].mean() < 1e-8 * spec[sampled].mean()


def test_optics_helpers():
    kz = np.array([2.0, 1.5, 0.0])
    kx = np.array([1.0, 1.0, 0.0])
    assert wedge_mask(kz, kx, 60).tolist() == [False, True, True]
    assert wedge_mask(kz, kx, 90).all()
    o = Optics()
    k2 = np.array([0.0, 1 / 24.0**2, 1 / 60.0**2], dtype=np.float32)
    tf = transfer_function(k2, 3.0, dataclasses.replace(o, bfactor=0.0))
    assert tf[0] == pytest.approx(o.amplitude_contrast, rel=1e-3)
    assert np.all((tf >= 0) & (tf <= 1))
    # no-noise imaging keeps a sign-inverted, normalised copy of a centred blob
    vol = np.zeros((16, 16, 16), np.float32)
    vol[6:10, 6:10, 6:10] = 1.0
    out, clean, info = apply_optics(vol, 10.0, o, np.inf, np.random.default_rng(0),
                                    keep_clean=True)
    assert np.allclose(out, clean) and info["noise_var"] == 0.0
    assert out[8, 8, 8] < 0  # protein dark
    with pytest.raises(ValueError):
        apply_optics(vol, 10.0, o, 0.0, np.random.default_rng(0))


def test_byu_with_and_without_motor():
    with_m = generate_tomogram(SMALL_BYU, 0, has_motor=True)
    assert with_m.meta["has_motor"] is True
    assert list(with_m.picks.particle_type) == [BYU_MOTOR.name]
    lo, hi = SMALL_BYU.spacing_range
    assert lo <= with_m.voxel_spacing <= hi
    idx = angstrom_to_index(with_m.picks[["x", "y", "z"]].to_numpy(), with_m.voxel_spacing)
    assert in_bounds(idx, SMALL_BYU.shape).all()
    without = generate_tomogram(SMALL_BYU, 0, has_motor=False)
    assert len(without.picks) == 0 and without.meta["has_motor"] is False
    assert list(without.picks.columns) == ["particle_type", "x", "y", "z", *ROTATION_COLUMNS]
    assert without.volume.shape == SMALL_BYU.shape and without.volume.dtype == np.float32
    drawn = {generate_tomogram(SMALL_BYU, s).meta["has_motor"] for s in range(8)}
    assert drawn == {True, False}
    spacings = {generate_tomogram(SMALL_BYU, s, has_motor=False).voxel_spacing for s in range(3)}
    assert len(spacings) > 1


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError):
        generate_tomogram(TINY, 0, has_motor=True)
    with pytest.raises(ConfigError):
        generate_tomogram(TINY, -1)
    with pytest.raises(ConfigError):
        generate_tomogram(TINY, 0, snr=0.0)
    with pytest.raises(ConfigError):
        PhantomSpec(name="x", task="nope", shape=(8, 8, 8), voxel_spacing=10.0, particles=())
    with pytest.raises(ConfigError):
        dataclasses.replace(TINY, counts=((1, 2),))


def test_tomogram_pyramid():
    vol = np.random.default_rng(0).standard_normal((9, 16, 12)).astype(np.float32)
    levels = tomogram_pyramid(vol, levels=3)
    assert [lv.shape for lv in levels] == [(9, 16, 12), (5, 8, 6), (3, 4, 3)]
    assert all(lv.dtype == np.float32 for lv in levels)
    assert levels[1][0, 0, 0] == pytest.approx(vol[:2, :2, :2].mean(), abs=1e-6)
    assert levels[1][4, 0, 0] == pytest.approx(vol[8, :2, :2].mean(), abs=1e-6)  # edge padding
    assert tomogram_pyramid(vol, levels=1)[0] is not None
    with pytest.raises(ValueError):
        tomogram_pyramid(vol, levels=0)


@pytest.mark.parametrize("has_motor", [True, False])
def test_tiny_byu_motor_inside_the_volume(has_motor):
    ph = generate_tomogram(PRESETS["tiny-byu"], 5, has_motor=has_motor)
    assert ph.volume.shape == (48, 96, 96)
    assert 36.0 <= ph.voxel_spacing <= 44.0
    assert len(ph.picks) == int(has_motor)
    if has_motor:
        zyx = ph.picks[["z", "y", "x"]].to_numpy()[0] / ph.voxel_spacing
        assert np.all(zyx >= 0) and np.all(zyx < np.array(ph.volume.shape))
