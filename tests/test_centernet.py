"""centernet_slices: keypoint targets and decoding, the loss terms, the network, slice
augmentation, and the method end to end on small in-memory runs (particles and motor)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.errors import ConfigError
from cryobench.methods.slices import augment as A
from cryobench.methods.slices.keypoints import (
    STRIDE,
    draw_gaussian,
    encode_boxes,
    gaussian_radius,
    output_size,
    peaks_to_boxes,
)

torch = pytest.importorskip("torch")


# ----- keypoint targets -----------------------------------------------------------------------
def test_gaussian_radius_hand_worked():
    # 10 x 10 at overlap 0.7: r1 = (20 + sqrt(400 - 4 * 17.647)) / 2 = 19.075,
    # r2 = (40 + sqrt(1600 - 480)) / 2 = 36.73, r3 = (-28 + sqrt(784 + 336)) / 2 = 2.733
    assert gaussian_radius(10, 10, 0.7) == pytest.approx((-28 + np.sqrt(1120)) / 2)
    assert gaussian_radius(10, 10, 0.7) == pytest.approx(2.7332, abs=1e-4)
    assert gaussian_radius(40, 10) > gaussian_radius(10, 10)  # grows with the box


def test_draw_gaussian_peak_sigma_and_border():
    hm = np.zeros((7, 7), np.float32)
    draw_gaussian(hm, (3, 3), 2)  # sigma = 5 / 6
    assert hm[3, 3] == 1.0 and hm.sum() > 1
    assert hm[3, 4] == pytest.approx(np.exp(-1 / (2 * (5 / 6) ** 2)), rel=1e-6)
    assert hm[0, 0] == 0.0  # outside the radius
    corner = np.zeros((4, 4), np.float32)
    draw_gaussian(corner, (0, 0), 2)  # clipped, no error
    assert corner[0, 0] == 1.0 and corner[0, 2] > 0 and corner[0, 3] == 0
    prev = corner.copy()
    draw_gaussian(corner, (3, 3), 0)
    assert corner[3, 3] == 1.0 and np.all(corner >= prev)  # combined by maximum


def test_encode_hand_example():
    # a 20 x 12 box centred at image (41, 22): cell (10, 5), offset (0.25, 0.5), size (5, 3)
    t = encode_boxes(np.array([[31.0, 16.0, 51.0, 28.0]]), np.array([1]), (64, 64), 2)
    assert t.heatmap.shape == (2, 16, 16) and t.size.shape == (2, 16, 16)
    assert t.heatmap[1, 5, 10] == 1.0 and t.heatmap[1].max() == 1.0
    assert t.heatmap[0].max() == 0.0
    assert t.mask.sum() == 1 and t.mask[0, 5, 10] == 1
    assert tuple(t.size[:, 5, 10]) == (5.0, 3.0)
    assert tuple(t.offset[:, 5, 10]) == (0.25, 0.5)
    # a centre outside the image is skipped; odd image sizes round up (ResNet stem)
    t2 = encode_boxes(np.array([[70.0, 0, 80, 10]]), np.array([0]), (66, 66), 1)
    assert t2.mask.sum() == 0 and t2.heatmap.shape == (1, 17, 17) == (1, output_size(66),
                                                                       output_size(66))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(2, 120), st.floats(2, 120), st.floats(4, 40),
                          st.floats(4, 40), st.integers(0, 2)), min_size=1, max_size=6))
def test_encode_then_decode_recovers_the_boxes(objs):
    """Targets decoded as if the network were perfect give back every box whose centre cell
    is its own (exact up to float32)."""
    boxes = np.array([[x - w / 2, y - h / 2, x + w / 2, y + h / 2] for x, y, w, h, _ in objs])
    labels = np.array([o[4] for o in objs])
    cells = {(int(np.floor(x / STRIDE)), int(np.floor(y / STRIDE))) for x, y, *_ in objs}
    if len(cells) < len(objs):
        return  # two centres in one cell share its size and offset
    t = encode_boxes(boxes, labels, (128, 128), 3)
    hm = torch.from_numpy(t.heatmap)[None]
    peaks = (hm == torch.nn.functional.max_pool2d(hm, 3, 1, 1))[0].numpy()
    got, glab, score = peaks_to_boxes(t.heatmap, peaks & (t.heatmap == 1), t.size, t.offset,
                                      100, 0.5)
    assert len(got) == len(objs) and (score == 1).all()
    order = np.lexsort((boxes[:, 1], boxes[:, 0], labels))
    gorder = np.lexsort((got[:, 1], got[:, 0], glab))
    np.testing.assert_array_equal(glab[gorder], labels[order])
    np.testing.assert_allclose(got[gorder], boxes[order], atol=1e-4)


def test_peaks_to_boxes_orders_by_score_and_applies_floor_and_k():
    hm = np.zeros((2, 4, 4), np.float32)
    hm[0, 1, 1], hm[1, 2, 3], hm[0, 3, 0] = 0.6, 0.9, 0.04
    size = np.full((2, 4, 4), 2.0, np.float32)
    off = np.zeros((2, 4, 4), np.float32)
    boxes, labels, scores = peaks_to_boxes(hm, hm > 0, size, off, k=5, floor=0.05)
    assert labels.tolist() == [1, 0] and scores.tolist() == pytest.approx([0.9, 0.6])
    assert boxes[0].tolist() == [8.0, 4.0, 16.0, 12.0]  # cell (3, 2) * 4, side 2 cells
    assert len(peaks_to_boxes(hm, hm > 0, size, off, k=1, floor=0.05)[0]) == 1


def test_decode_max_pool_nms_keeps_one_peak_per_blob():
    from cryobench.methods.slices.keypoints import decode

    t = encode_boxes(np.array([[10.0, 10, 30, 30], [60, 60, 70, 70]]), np.array([0, 0]),
                     (96, 96), 1)
    hm = torch.from_numpy(t.heatmap)[None] * 0.9
    out = decode(hm, torch.from_numpy(t.size)[None], torch.from_numpy(t.offset)[None], 10, 0.3)
    boxes, labels, scores = out[0]
    assert len(boxes) == 2 and scores.tolist() == pytest.approx([0.9, 0.9])
    np.testing.assert_allclose(np.sort(boxes[:, 0]), [10.0, 60.0], atol=1e-5)


# ----- losses ---------------------------------------------------------------------------------
def test_focal_loss_hand_worked():
    from cryobench.methods.slices.centernet import penalty_reduced_focal_loss

    logits = torch.zeros(1, 1, 1, 2)  # p = 0.5 everywhere
    target = torch.tensor([[[[1.0, 0.5]]]])
    # centre: -(0.5)^2 log 0.5; neighbour: -(1 - 0.5)^4 (0.5)^2 log 0.5; one centre
    want = -(0.25 * np.log(0.5) + 0.0625 * 0.25 * np.log(0.5))
    assert float(penalty_reduced_focal_loss(logits, target)) == pytest.approx(want, rel=1e-6)
    # no centre: divided by 1, not by 0
    assert float(penalty_reduced_focal_loss(logits, torch.zeros(1, 1, 2, 2))) == pytest.approx(
        -4 * 0.25 * np.log(0.5), rel=1e-6)
    # confident and right is (almost) free; confident and wrong is not
    good = penalty_reduced_focal_loss(torch.tensor([[[[12.0, -12.0]]]]), target)
    bad = penalty_reduced_focal_loss(torch.tensor([[[[-12.0, 12.0]]]]), target)
    assert float(good) < 1e-4 < 1 < float(bad)


def test_masked_l1_and_centre_giou():
    from cryobench.methods.slices.centernet import centre_giou_loss, masked_l1

    mask = torch.zeros(1, 1, 3, 3)
    mask[0, 0, 1, 1] = 1
    size_t = torch.zeros(1, 2, 3, 3)
    size_t[0, :, 1, 1] = torch.tensor([4.0, 2.0])
    off_t = torch.zeros(1, 2, 3, 3)
    pred = size_t.clone()
    pred[0, 0, 1, 1] = 6.0  # |6 - 4| at one of the two masked values
    assert float(masked_l1(pred, size_t, mask)) == pytest.approx(2 / 2, rel=1e-3)
    assert float(centre_giou_loss(size_t, off_t, size_t, off_t, mask)) == pytest.approx(0.0,
                                                                                       abs=1e-6)
    # width 6 vs 4, same centre and height: IoU = 8 / 12, enclosing box = union -> 1 - 2/3
    assert float(centre_giou_loss(pred, off_t, size_t, off_t, mask)) == pytest.approx(1 / 3,
                                                                                    rel=1e-5)
    assert float(centre_giou_loss(pred, off_t, size_t, off_t, mask * 0)) == 0.0


def test_network_shapes_and_total_loss_backward():
    pytest.importorskip("torchvision")
    from cryobench.methods.slices.centernet import LossWeights, build_centernet, centernet_loss

    torch.manual_seed(0)
    net = build_centernet("resnet18", 3, 8, 8)
    x = torch.randn(2, 1, 66, 50)
    heat, size, offset, presence = net(x)
    assert heat.shape == (2, 3, 17, 13) and size.shape == offset.shape == (2, 2, 17, 13)
    assert presence.shape == (2,)
    assert torch.sigmoid(heat).mean().item() == pytest.approx(0.1, abs=0.05)  # prior 0.1
    ts = [encode_boxes(np.array([[10.0, 10, 30, 24]]), np.array([2]), (66, 50), 3),
          encode_boxes(np.zeros((0, 4)), np.zeros(0, int), (66, 50), 3)]
    y = tuple(torch.from_numpy(np.stack([getattr(t, f) for t in ts]))
              for f in ("heatmap", "size", "offset", "mask")) + (torch.tensor([1.0, 0.0]),)
    with_giou = centernet_loss(net(x), y, LossWeights())
    plain = centernet_loss(net(x), y, LossWeights(giou=0.0))
    assert torch.isfinite(with_giou) and with_giou.item() > plain.item()
    with_giou.backward()
    assert all(p.grad is not None for p in net.heat.parameters())
    with pytest.raises(ConfigError, match="backbone"):
        build_centernet("vgg16", 1)


# ----- augmentation ---------------------------------------------------------------------------
def test_warp_moves_the_image_and_its_box_together():
    img = np.zeros((64, 80), np.float32)
    img[20:27, 50:57] = 1.0  # a 7 x 7 square centred on index (23, 53) = image (53.5, 23.5)
    box = np.array([[50.0, 20.0, 57.0, 27.0]])
    rng = np.random.default_rng(4)
    checked = 0
    for _ in range(30):
        aff = A.random_affine(rng, img.shape, (48, 48), rotation=15, scale=0.1, translate=0.1)
        out = A.warp(img, aff, cval=0.0)
        boxes, labels = A.warp_boxes(box, np.array([0]), aff)
        if len(boxes) == 0 or boxes.min() < 2 or boxes.max() > 46:
            continue  # the square is cut by the window: its centroid moves
        checked += 1
        cy, cx = np.array(np.nonzero(out > 0.5)).mean(axis=1) + 0.5
        assert (boxes[0, 0] + boxes[0, 2]) / 2 == pytest.approx(cx, abs=0.6)
        assert (boxes[0, 1] + boxes[0, 3]) / 2 == pytest.approx(cy, abs=0.6)
        assert boxes[0, 2] - boxes[0, 0] == pytest.approx(7 * aff.scale, rel=1e-5)
    assert checked >= 5
    same = A.random_affine(rng, (32, 32), (32, 32), rotation=0, scale=0, translate=0)
    np.testing.assert_array_equal(A.warp(img[:32, :32], same), img[:32, :32])
    assert A.warp_boxes(box, np.array([0]), same)[0].shape == (0, 4)  # centre left the image


def test_intensity_steps():
    rng = np.random.default_rng(0)
    u8 = (np.linspace(0, 1, 64 * 64).reshape(64, 64) ** 3 * 255).astype(np.uint8)
    plain = A.prepare_slice(u8, clahe=False)
    assert plain.dtype == np.float32 and plain.max() == 1.0
    pytest.importorskip("skimage")
    eq = A.prepare_slice(u8, clahe=True)
    assert eq.dtype == np.float32 and 0 <= eq.min() and eq.max() <= 1
    np.testing.assert_array_equal(eq, A.prepare_slice(u8, clahe=True))  # deterministic
    assert np.median(eq) > np.median(plain)  # a dark-skewed slice gets brighter mid-tones
    for v in (0, 255):  # constant slices stay constant
        assert (A.prepare_slice(np.full((48, 48), v, np.uint8)) == v / 255).all()
    z = A.zscore(eq)
    assert abs(float(z.mean())) < 1e-5 and float(z.std()) == pytest.approx(1, rel=1e-4)
    assert (A.zscore(np.full((4, 4), 3.0)) == 0).all()
    flat = np.full((200, 200), 0.5, np.float32)
    noisy = A.poisson_noise(flat, rng, (50.0, 50.0))
    assert noisy.mean() == pytest.approx(0.5, rel=0.02)
    assert noisy.var() == pytest.approx(0.5 / 50, rel=0.1)  # Poisson: var = mean / dose
    spike = np.zeros((9, 9), np.float32)
    spike[4, 4] = 1
    assert A.gaussian_blur(spike, rng, (1.0, 1.0))[4, 4] < 0.5


# ----- the method -----------------------------------------------------------------------------
tv = pytest.importorskip("torchvision")


def _ctx(tmp_path, runs, task="particles", name="w"):
    from cryobench.methods.base import RunContext

    return RunContext(work_dir=tmp_path / name, budget="smoke", progress=False, task=task,
                      particles=tuple(runs[0].particles))


def test_configs_and_metadata():
    from baselines.centernet_slices import CenterNetSlices

    assert CenterNetSlices.extra == "detection"
    assert set(CenterNetSlices.tasks) == {"particles", "motor"}
    cpu, full = CenterNetSlices.default_config("cpu"), CenterNetSlices.default_config("full")
    assert (cpu.backbone, full.backbone) == ("resnet18", "resnet101")
    assert cpu.grad_clip == 5.0 and cpu.schedule == "cosine" and cpu.patience > 0
    assert (cpu.focal_alpha, cpu.focal_beta, cpu.rotation, cpu.scale) == (2.0, 4.0, 15.0, 0.1)
    assert cpu.clahe and cpu.noise_blur and cpu.giou
    for bad in ({"backbone": "vgg"}, {"crop": 8}, {"noise_counts": (5.0, 1.0)},
                {"score_floor": 1.0}):
        with pytest.raises(ConfigError):
            CenterNetSlices.default_config("smoke", **bad)


def _no_truth(run):
    class Blind:
        name, voxel_spacing, particles = run.name, run.voxel_spacing, run.particles

        def tomogram(self, level=0, crop=None):
            return run.tomogram(level, crop)

        def picks(self):
            raise AssertionError("predict read the test run's ground truth")

    return Blind()


def test_fit_predict_save_load_particles(tmp_path):
    from baselines.centernet_slices import CenterNetSlices
    from cryobench.io.picks import validate_picks
    from cryobench.testing.fakes import make_fake_runs

    runs = make_fake_runs(4, shape=(32, 64, 64), per_class=3, seed=3)
    ctx = _ctx(tmp_path, runs)
    cfg = CenterNetSlices.default_config("smoke", bin=1, epochs=2, patience=2)
    m = CenterNetSlices(cfg)
    m.fit(runs[:2], runs[2:3], ctx)
    assert set(m.thresholds) == {p.name for p in runs[0].particles}
    assert len(m.history) == 2 and all("val" in h for h in m.history)  # mAP@0.5 per epoch
    assert {"val_slice_map50", "val_slice_map", "train_best_val_slice_map50"} <= set(
        m.extra_metrics)
    test = runs[3]
    picks = m.predict(_no_truth(test), ctx)
    validate_picks(picks, "test", known_types=[p.name for p in test.particles])
    assert list(picks.columns) == ["experiment", "particle_type", "x", "y", "z", "score"]
    metrics = m.slice_metrics([test])
    assert {"slice_map", "slice_map50", "slice_map70", "slice_map90"} <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    m.save(tmp_path / "saved")
    loaded = CenterNetSlices.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(loaded.predict(test, ctx), picks, check_exact=True)


def test_motor_task_at_most_one_pick_and_ablation_switches(tmp_path):
    from baselines.centernet_slices import CenterNetSlices
    from cryobench.testing.fakes import make_fake_motor_runs

    motor = make_fake_motor_runs(4, seed=1)
    for i, overrides in enumerate(({}, {"clahe": False, "noise_blur": False, "giou": False,
                                        "box_px": {"flagellar-motor": 24}})):
        ctx = _ctx(tmp_path, motor, task="motor", name=f"m{i}")
        m = CenterNetSlices(CenterNetSlices.default_config("smoke", bin=1, **overrides))
        m.fit(motor[:2], motor[2:3], ctx)
        assert m.task == "motor" and m.motor_threshold is not None
        picks = m.predict(_no_truth(motor[3]), ctx)
        assert len(picks) <= 1 and set(picks["particle_type"]) <= {"flagellar-motor"}
        if "box_px" in overrides:  # trained on, and judged against, 24-pixel squares
            widths = np.concatenate([s.boxes[:, 2] - s.boxes[:, 0]
                                     for s in m._samples(motor[:1], ctx, salt=1)])
            assert widths.max() == 24.0 and (widths <= 24.0).all()
            assert "slice_ap50/flagellar-motor" in m.slice_metrics([motor[2]])  # a val run


def test_epochs_zero_keeps_the_initial_weights(tmp_path):
    """``--set epochs=0``: the untrained reference (random weights, thresholds still tuned)."""
    from baselines.centernet_slices import CenterNetSlices
    from cryobench.testing.fakes import make_fake_motor_runs

    motor = make_fake_motor_runs(3, shape=(16, 32, 32), seed=2)
    ctx = _ctx(tmp_path, motor, task="motor")
    m = CenterNetSlices(CenterNetSlices.default_config("smoke", epochs=0))
    m.fit(motor[:1], motor[1:2], ctx)
    torch.manual_seed(ctx.seed)
    fresh = m._build()
    assert m.history == [] and "train_epochs" not in m.extra_metrics
    for a, b in zip(m.model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert len(m.predict(motor[2], ctx)) <= 1


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    import sys

    from baselines.centernet_slices import CenterNetSlices
    from cryobench.errors import MethodError
    from cryobench.testing.fakes import make_fake_runs

    runs = make_fake_runs(1, shape=(16, 32, 32), per_class=1, seed=0)
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(MethodError, match=r"pip install 'cryobench\[detection\]'"):
        CenterNetSlices(CenterNetSlices.default_config("smoke")).fit(runs, [], _ctx(tmp_path,
                                                                                   runs))
