"""Run ultralytics YOLO fully offline: build from ``yolov8n.yaml``, train, load, predict.

ultralytics reads ``YOLO_OFFLINE``, ``YOLO_CONFIG_DIR`` and ``YOLO_VERBOSE`` once, when it is
first imported, so :func:`import_ultralytics` sets them first (the config dir goes into the run's
work dir). Even offline, ultralytics 8.4 looks up a plotting font (``check_font`` ->
``requests.head`` on github.com) whenever it checks a dataset; :func:`offline` replaces that
check by a no-op, switches usage analytics off and turns any download attempt
(``safe_download``, a missing weights asset) into a :class:`~cryobench.errors.MethodError` for
the duration of a call, so nothing is ever fetched.
Training runs with ``pretrained=False``, ``amp`` only on CUDA, ``plots=False`` and ``val=False``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cryobench.errors import MethodError
from cryobench.methods.slices.extras import require

__all__ = ["import_ultralytics", "offline", "train_yolo", "load_yolo", "predict_yolo",
           "yolo_state_dict", "save_yolo_state", "build_yolo"]

MODEL_YAML = "yolov8n.yaml"


def import_ultralytics(config_dir: str | os.PathLike[str] | None, method: str = "yolo_unet"
                       ) -> Any:
    """Set ultralytics' environment (offline, quiet, config dir) and import it.

    The environment only takes effect if ultralytics was not imported before in this process.
    """
    if "ultralytics" not in sys.modules:
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ.setdefault("YOLO_VERBOSE", "False")
        if config_dir is not None:
            Path(config_dir).mkdir(parents=True, exist_ok=True)
            os.environ["YOLO_CONFIG_DIR"] = str(Path(config_dir).resolve())
    return require("ultralytics", "yolo", method)


def _refuse_download(*args: Any, **kwargs: Any) -> None:
    what = kwargs.get("url") or (args[0] if args else "?")
    raise MethodError(f"ultralytics tried to download {what}; cryobench runs YOLO offline")


def _local_asset(file: Any, *args: Any, **kwargs: Any) -> str:
    if Path(str(file)).exists():
        return str(file)
    raise MethodError(f"ultralytics tried to download weights {file!r}; cryobench builds YOLO "
                      "from its yaml and loads only local checkpoints")


@contextlib.contextmanager
def offline(quiet: bool = True) -> Iterator[None]:
    """No font look-ups, no downloads and (``quiet``) no ultralytics logging inside the block."""
    import ultralytics.data.utils as data_utils
    import ultralytics.utils as uutils
    import ultralytics.utils.checks as checks
    import ultralytics.utils.downloads as downloads
    import ultralytics.utils.events as events

    patches = [
        (data_utils, "check_font", lambda *a, **k: None),
        (checks, "check_font", lambda *a, **k: None),
        (downloads, "safe_download", _refuse_download),
        (downloads, "attempt_download_asset", _local_asset),
    ]
    if hasattr(data_utils, "safe_download"):
        patches.append((data_utils, "safe_download", _refuse_download))
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches if hasattr(mod, name)]
    for mod, name, new in patches:
        if hasattr(mod, name):
            setattr(mod, name, new)
    analytics = getattr(events, "events", None)
    sending = getattr(analytics, "enabled", False)
    if analytics is not None:
        analytics.enabled = False  # usage analytics (off anyway when YOLO_OFFLINE was set first)
    level = uutils.LOGGER.level
    if quiet:
        uutils.LOGGER.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for mod, name, old in saved:
            setattr(mod, name, old)
        if analytics is not None:
            analytics.enabled = sending
        uutils.LOGGER.setLevel(level)


def _device(device: str) -> str:
    return "cpu" if device.startswith("cpu") else device.replace("cuda:", "").replace("cuda", "0")


def train_yolo(data_yaml: Path, out_dir: Path, *, epochs: int, imgsz: int, batch: int,
               seed: int, device: str, amp: bool, num_classes: int, lr0: float = 0.01,
               quiet: bool = True, extra: dict[str, Any] | None = None,
               progress: bool = False, desc: str = "train yolo") -> Path:
    """Train YOLOv8 (random init from ``yolov8n.yaml``) on ``data_yaml``; returns ``last.pt``.

    Everything ultralytics writes goes under ``out_dir`` (the caller's work directory). With
    ``progress``, a tqdm bar counts the training steps (ultralytics' own output stays off).
    """
    from tqdm.auto import tqdm
    from ultralytics import YOLO

    bar: list[Any] = []

    def on_train_start(trainer: Any) -> None:
        steps = int(trainer.epochs) * max(1, len(trainer.train_loader))
        bar.append(tqdm(total=steps, desc=desc, unit="step", disable=not progress,
                        leave=False))

    def on_train_batch_end(trainer: Any) -> None:
        if bar:
            bar[0].update(1)

    def on_train_end(trainer: Any) -> None:
        if bar:
            bar[0].close()

    with offline(quiet):
        model = YOLO(MODEL_YAML, task="detect")
        model.add_callback("on_train_start", on_train_start)
        model.add_callback("on_train_batch_end", on_train_batch_end)
        model.add_callback("on_train_end", on_train_end)
        args = dict(
            data=str(data_yaml), epochs=int(epochs), imgsz=int(imgsz), batch=int(batch),
            device=_device(device), workers=0, amp=bool(amp and device.startswith("cuda")),
            pretrained=False, plots=False, val=False, seed=int(seed), deterministic=True,
            project=str(out_dir), name="train", exist_ok=True, verbose=False, cache=False,
            optimizer="AdamW", lr0=lr0, hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, degrees=0.0,
            translate=0.1, scale=0.1, fliplr=0.5, flipud=0.5, mosaic=1.0, close_mosaic=0,
            save=True, save_period=-1,
        )
        args.update(extra or {})
        try:
            model.train(**args)
        finally:
            if bar:
                bar[0].close()
        last = Path(model.trainer.last)
    if not last.exists():
        raise MethodError(f"YOLO training wrote no checkpoint at {last}")
    return last


def load_yolo(weights: Path, quiet: bool = True) -> Any:
    """Load a YOLO checkpoint that *this run's training* just wrote (never downloads).

    An ultralytics checkpoint is a pickle (``torch.load(weights_only=False)`` inside
    ultralytics): never call this on a file from elsewhere; saved models go through
    :func:`yolo_state_dict` and :func:`build_yolo`.
    """
    from ultralytics import YOLO

    with offline(quiet):
        return YOLO(str(weights), task="detect")


def yolo_state_dict(model: Any) -> dict[str, Any]:
    """A copy of a YOLO model's tensors (CPU), before any prediction fuses its layers."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.model.state_dict().items()}


def save_yolo_state(state: dict[str, Any], path: Path) -> None:
    """Write a YOLO state dict (tensors only), atomically."""
    import torch

    from cryobench.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def build_yolo(num_classes: int, state_path: Path, quiet: bool = True) -> Any:
    """Rebuild a trained YOLO without unpickling anything but tensors: the architecture comes
    from ultralytics' own :data:`MODEL_YAML` (never from the model directory: ultralytics
    ``eval``s parts of a model yaml), the weights from ``torch.load(weights_only=True)``.

    Raises:
        MethodError: the state file is missing, not a tensors-only file, or does not fit the
            architecture.
    """
    import copy

    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from cryobench.methods.weights import load_tensors

    state = load_tensors(state_path, "saved YOLO weights")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise MethodError("saved YOLO weights are not a state dict of tensors", state_path)
    with offline(quiet):
        yolo = YOLO(MODEL_YAML, task="detect")
        net = DetectionModel(copy.deepcopy(yolo.model.yaml), ch=3, nc=int(num_classes),
                             verbose=False)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MethodError(f"saved YOLO weights do not fit {MODEL_YAML} with {num_classes} "
                          f"classes ({first[:200]})", state_path) from None
    net.args, net.task = yolo.model.args, "detect"
    net.names = {i: str(i) for i in range(int(num_classes))}
    net = net.float().eval()
    for m in net.modules():  # as ultralytics' own checkpoint loader does
        if hasattr(m, "inplace"):
            m.inplace = True
    yolo.model = net
    return yolo


def predict_yolo(model: Any, images: Sequence[np.ndarray], *, imgsz: int, conf: float,
                 iou: float, max_det: int, device: str, quiet: bool = True
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Boxes ``(x0, y0, x1, y1)`` in image coordinates, 0-based labels and scores per image."""
    batch = [np.repeat(np.asarray(im, np.uint8)[..., None], 3, axis=2) for im in images]
    with offline(quiet):
        results = model.predict(batch, imgsz=int(imgsz), conf=float(conf), iou=float(iou),
                                max_det=int(max_det), device=_device(device), verbose=False)
    out = []
    for r in results:
        b = r.boxes
        out.append((b.xyxy.cpu().numpy().astype(np.float64),
                    b.cls.cpu().numpy().astype(np.int64),
                    b.conf.cpu().numpy().astype(np.float64)))
    return out
