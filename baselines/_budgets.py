"""Budget overrides shared by the segmentation baselines."""

from __future__ import annotations

SMOKE = {
    "bin": 2,
    "patch_size": 16,
    "batch_size": 2,
    "epochs": 1,
    "steps_per_epoch": 2,
    "val_patches": 1,
    "roi_size": 32,
    "sw_batch_size": 1,
    "threads": 1,
}
"""Seconds: a couple of optimiser steps on 16^3 patches, for the conformance suite."""

PER_PARTICLE_FULL = {
    "bin": 1,
    "patch_size": 64,
    "batch_size": 8,
    "epochs": 40,
    "steps_per_epoch": 100,
    "patience": 10,
    "val_patches": 32,
    "roi_size": 128,
    "sw_batch_size": 8,
    "threads": 0,
}
"""The published per-particle recipes (GPU): full resolution, 64^3 patches, 40 epochs."""
