"""Sliding-window inference over whole tomograms (MONAI ``sliding_window_inference``).

Windows of ``roi_size`` overlap by ``overlap``; their outputs (after ``activation``, so
probabilities are blended, not logits) are blended with a Gaussian weight map and accumulated on
the CPU (or ``out_device``), so the device holds only a batch of windows. The input volume is
not copied when it is already a contiguous float32 array.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from cryobench.methods.engine.training import autocast, resolve_precision

__all__ = ["sliding_window_predict", "direct_predict", "fit_roi", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda t: t,
    "sigmoid": torch.sigmoid,
    "softmax": lambda t: torch.softmax(t, dim=1),
}


def _activation(activation: str | Callable | None) -> Callable[[torch.Tensor], torch.Tensor]:
    if activation is None:
        return ACTIVATIONS["none"]
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{', '.join(ACTIVATIONS)}") from None


def fit_roi(shape: Sequence[int], roi: int | Sequence[int], multiple: int = 1) -> list[int]:
    """A window no larger than needed: per axis ``min(roi, size rounded up to multiple)``.

    A thin volume (e.g. 92 slices with a 128 window) then gets one window along that axis
    instead of a padded one.
    """
    roi3 = [int(roi)] * 3 if np.isscalar(roi) else [int(r) for r in roi]
    m = max(int(multiple), 1)
    return [min(r, -(-int(n) // m) * m) for r, n in zip(roi3, shape[-3:], strict=True)]


def _as_input(volume: np.ndarray) -> torch.Tensor:
    vol = np.ascontiguousarray(volume, dtype=np.float32)
    if vol.ndim == 3:
        vol = vol[None]
    if vol.ndim != 4:
        raise ValueError(f"expected a (z, y, x) or (C, z, y, x) volume, got shape {vol.shape}")
    return torch.from_numpy(vol)[None]  # (1, C, z, y, x), shares memory


def sliding_window_predict(model: nn.Module, volume: np.ndarray, roi_size: Sequence[int] | int,
                           *, overlap: float = 0.25, sw_batch_size: int = 4,
                           activation: str | Callable | None = "softmax",
                           mode: str = "gaussian", device: str = "cpu",
                           out_device: str = "cpu", amp: bool = False,
                           precision: str = "fp32", channels_last: bool = False,
                           progress: bool = False) -> np.ndarray:
    """Run ``model`` over a whole volume window by window.

    Args:
        model: maps ``(B, C_in, *roi)`` to ``(B, C_out, *roi)``; put in eval mode here.
        volume: ``(z, y, x)`` or ``(C_in, z, y, x)`` array (normalised as in training).
        roi_size: window size (int or three ints); clipped to the volume for small volumes.
        overlap: fraction of overlap between neighbouring windows.
        sw_batch_size: windows per forward pass.
        activation: ``softmax``, ``sigmoid``, ``none`` or a callable, applied per window.
        mode: blending, ``gaussian`` (default) or ``constant``.
        device: where the model runs; ``out_device``: where outputs are accumulated.
        amp: float16 autocast on CUDA when ``precision="auto"``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``
            (:func:`~cryobench.methods.engine.training.resolve_precision`).
        channels_last: run the model in the channels-last-3d layout (faster on the CPU).

    Returns:
        ``(C_out, z, y, x)`` float32 array.
    """
    from monai.inferers import sliding_window_inference

    act = _activation(activation)
    roi = [int(roi_size)] * 3 if np.isscalar(roi_size) else [int(r) for r in roi_size]
    x = _as_input(volume)
    prec = resolve_precision(precision, device, amp)
    model.eval()
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    if channels_last:
        model.to(memory_format=layout)

    def predictor(window: torch.Tensor) -> torch.Tensor:
        window = window.to(device, non_blocking=True)
        if channels_last:
            window = window.contiguous(memory_format=layout)
        with autocast(device, prec):
            out = model(window)
        return act(out.float()).contiguous()

    with torch.inference_mode():
        out = sliding_window_inference(
            x, roi, sw_batch_size, predictor, overlap=overlap, mode=mode,
            padding_mode="replicate", sw_device=device, device=out_device, progress=progress,
        )
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return out[0].cpu().numpy().astype(np.float32, copy=False)


def direct_predict(model: nn.Module, volume: np.ndarray, *,
                   activation: str | Callable | None = "softmax", device: str = "cpu",
                   amp: bool = False, precision: str = "fp32") -> np.ndarray:
    """Run ``model`` on the whole volume at once (small volumes only); ``(C_out, z, y, x)``."""
    act = _activation(activation)
    prec = resolve_precision(precision, device, amp)
    model.eval()
    with torch.inference_mode(), autocast(device, prec):
        out = model(_as_input(volume).to(device))
    return act(out.float())[0].cpu().numpy()
