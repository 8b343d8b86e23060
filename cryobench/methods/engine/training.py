"""One training loop for every network of the built-in baselines.

AdamW; a per-step ``cosine`` (with linear warm-up), ``onecycle`` or ``constant`` schedule;
gradient-norm clipping; mixed precision (float16 autocast with a gradient scaler on CUDA only,
when ``ctx.amp``; bfloat16 autocast on the CPU only when asked for, see
:func:`resolve_precision`); optional early stopping on a validation metric (the best weights are
restored); checkpoints (``last.pt``, ``best.pt``, written atomically) and a tqdm bar honouring
``ctx.progress``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cryobench.errors import ConfigError
from cryobench.io.atomic import atomic_path
from cryobench.methods.base import RunContext

__all__ = [
    "TrainSettings",
    "TrainResult",
    "train_model",
    "fit_or_keep_initial",
    "deterministic",
    "make_scheduler",
    "PRECISIONS",
    "native_bf16",
    "resolve_precision",
    "autocast",
]

SCHEDULES = ("cosine", "onecycle", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # pragma: no cover - older torch
        return False


def resolve_precision(requested: str, device: str, amp: bool = False) -> str:
    """The precision to compute in: ``fp32``, ``bf16`` or ``fp16``.

    ``auto``: on CUDA, ``fp16`` when ``amp`` (AMP is CUDA-only) else ``fp32``; on the CPU always
    ``fp32``, whatever the CPU, so that a config and seed give the same predictions on every
    CPU. bfloat16 on the CPU (about 3x faster 3D convolutions on CPUs with native bf16 units,
    :func:`native_bf16`, but other numbers, and not repeatable there) is opt-in:
    ``precision="bf16"``, which the config, and so the run record, keeps. ``fp16`` is CUDA-only.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision {requested!r}; choose one of "
                          f"{', '.join(PRECISIONS)}")
    cuda = device.startswith("cuda")
    if requested == "auto":
        if cuda:
            return "fp16" if amp else "fp32"
        return "fp32"
    if requested == "fp16" and not cuda:
        raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return requested


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for a resolved precision (``fp32``: a no-op)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


@dataclass
class TrainSettings:
    """Optimisation settings of one :func:`train_model` call."""

    epochs: int = 10
    steps_per_epoch: int = 50
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    grad_clip: float | None = 1.0
    patience: int = 0
    """Stop after this many validations without improvement (0: never stop early)."""
    min_delta: float = 0.0
    maximize: bool = False
    """Whether a larger validation metric is better (default: a loss, smaller is better)."""
    checkpoint_dir: Path | None = None
    desc: str = "train"
    precision: str = "fp32"
    """``auto``, ``fp32``, ``bf16`` or ``fp16``; see :func:`resolve_precision`."""
    channels_last: bool = False
    """Train in the channels-last-3d memory layout (faster 3D convolutions on the CPU)."""


@dataclass
class TrainResult:
    """What happened during training."""

    history: list[dict] = field(default_factory=list)
    """One entry per epoch: ``epoch, loss, val, lr, seconds``."""
    best_epoch: int = -1
    best_val: float | None = None
    stopped_early: bool = False
    steps: int = 0
    precision: str = "fp32"
    """The precision actually used."""


@contextlib.contextmanager
def deterministic(device: str) -> Iterator[None]:
    """Deterministic torch algorithms on CPU for the duration of the block (restored after)."""
    if not device.startswith("cpu"):
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, total_steps: int
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step learning-rate schedule named by ``settings.schedule``."""
    total = max(int(total_steps), 1)
    if settings.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=settings.lr, total_steps=total,
            pct_start=max(settings.warmup_fraction, 1.0 / total))
    if settings.schedule == "cosine":
        warm = int(round(settings.warmup_fraction * total))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            t = (step - warm) / max(total - warm, 1)
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if settings.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ConfigError(f"unknown schedule {settings.schedule!r}; choose one of "
                      f"{', '.join(SCHEDULES)}")


def _save(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _to(x, device: str):
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, device) for v in x)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def _float(x):
    """``x.float()`` for a tensor, a tuple/list or a dict of tensors (multi-head outputs)."""
    if isinstance(x, torch.Tensor):
        return x.float()
    if isinstance(x, (list, tuple)):
        return type(x)(_float(v) for v in x)
    if isinstance(x, dict):
        return {k: _float(v) for k, v in x.items()}
    return x


def train_model(model: nn.Module, batches: Callable[[int], Iterable],
                loss_fn: Callable[[torch.Tensor, object], torch.Tensor],
                settings: TrainSettings, ctx: RunContext, *,
                validate: Callable[[nn.Module], float] | None = None) -> TrainResult:
    """Train ``model`` in place.

    Args:
        model: the network (moved to ``ctx.device``).
        batches: ``epoch -> iterable of (inputs, targets)``; at most ``steps_per_epoch`` batches
            are taken per epoch (e.g. a DataLoader over a :class:`~.data.PatchDataset` after
            ``set_epoch``).
        loss_fn: ``(model(inputs), targets) -> scalar``; the output may be a tensor or a
            tuple/list/dict of tensors (each cast to float32), targets likewise.
        settings: optimisation settings.
        ctx: device, AMP (CUDA only) and progress.
        validate: ``model -> metric`` run after every epoch (model in eval mode, no grad);
            drives early stopping and ``best.pt``; the best weights are restored at the end.

    Returns:
        A :class:`TrainResult`.
    """
    if settings.epochs < 1 or settings.steps_per_epoch < 1:
        raise ConfigError("epochs and steps_per_epoch must be at least 1")
    device = ctx.device
    precision = resolve_precision(settings.precision, device, ctx.amp)
    model.to(device)
    layout = torch.channels_last_3d if settings.channels_last else torch.contiguous_format
    if settings.channels_last:
        model.to(memory_format=layout)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                            weight_decay=settings.weight_decay)
    sched = make_scheduler(opt, settings, settings.epochs * settings.steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    ckpt = Path(settings.checkpoint_dir) if settings.checkpoint_dir else None
    if ckpt:
        ckpt.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    result = TrainResult(precision=precision)
    best_state: dict | None = None
    since_best = 0
    bar = tqdm(total=settings.epochs * settings.steps_per_epoch, desc=settings.desc,
               disable=not ctx.progress, leave=False, unit="step")
    try:
        for epoch in range(settings.epochs):
            t0 = time.perf_counter()
            model.train()
            total, n = 0.0, 0
            for step, (inputs, targets) in enumerate(batches(epoch)):
                if step >= settings.steps_per_epoch:
                    break
                inputs, targets = _to(inputs, device), _to(targets, device)
                if settings.channels_last and inputs.ndim == 5:
                    inputs = inputs.contiguous(memory_format=layout)
                opt.zero_grad(set_to_none=True)
                with autocast(device, precision):
                    out = model(inputs)
                loss = loss_fn(_float(out), targets)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at epoch {epoch} step {step}")
                scaler.scale(loss).backward()
                if settings.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                total += float(loss.detach())
                n += 1
                result.steps += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{total / n:.4f}")
            entry = {"epoch": epoch, "loss": total / max(n, 1),
                     "lr": opt.param_groups[0]["lr"]}
            improved = False
            if validate is not None:
                model.eval()
                with torch.no_grad(), autocast(device, precision):
                    val = float(validate(model))
                entry["val"] = val
                best = result.best_val
                better = best is None or (val > best + settings.min_delta if settings.maximize
                                          else val < best - settings.min_delta)
                if better:
                    improved = True
                    result.best_val, result.best_epoch, since_best = val, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since_best += 1
            else:
                result.best_epoch = epoch
            entry["seconds"] = time.perf_counter() - t0
            result.history.append(entry)
            if epoch == 0 and settings.epochs > 1:
                ctx.say(f"{settings.desc}: the first of {settings.epochs} epochs took "
                        f"{entry['seconds']:.0f} s; about "
                        f"{_minutes(entry['seconds'] * (settings.epochs - 1))} more to train")
            if ckpt:
                _save(ckpt / "last.pt", {"epoch": epoch, "model": model.state_dict(),
                                         "optimizer": opt.state_dict(),
                                         "scheduler": sched.state_dict(),
                                         "history": result.history})
                if improved:
                    _save(ckpt / "best.pt", {"epoch": epoch, "model": best_state})
            if settings.patience and since_best >= settings.patience:
                result.stopped_early = True
                break
    finally:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    if settings.channels_last:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    return result


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def fit_or_keep_initial(model: nn.Module, batches: Callable[[int], Iterable],
                        loss_fn: Callable[..., torch.Tensor], cfg: Any, ctx: RunContext, *,
                        checkpoint_dir: Path, desc: str,
                        validate: Callable[[nn.Module], float] | None = None) -> TrainResult:
    """Train ``model`` with the optimisation fields of a method config, or keep its weights.

    ``cfg`` carries ``epochs, steps_per_epoch, lr, weight_decay, schedule, grad_clip, patience,
    precision, channels_last`` (the engine's config fields). ``validate`` is used for early
    stopping only when ``patience > 0``. With ``epochs = 0`` the model keeps its initial weights
    (the untrained reference, ``cryobench run --set epochs=0``) and the history is empty.
    Either way the model is returned on ``ctx.device`` in eval mode, as :func:`train_model`
    leaves it.
    """
    if cfg.epochs <= 0:
        model.to(ctx.device).eval()
        return TrainResult(precision=resolve_precision(cfg.precision, ctx.device, ctx.amp))
    settings = TrainSettings(
        epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch, lr=cfg.lr,
        weight_decay=cfg.weight_decay, schedule=cfg.schedule, grad_clip=cfg.grad_clip,
        patience=cfg.patience, checkpoint_dir=checkpoint_dir, desc=desc,
        precision=cfg.precision, channels_last=cfg.channels_last)
    return train_model(model, batches, loss_fn, settings, ctx,
                       validate=validate if cfg.patience > 0 else None)
