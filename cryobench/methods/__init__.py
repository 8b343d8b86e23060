"""Picking methods: the :class:`PickingMethod` interface, the registry and the shared engine."""

from cryobench.methods.base import BUDGETS, TASKS, PickingMethod, RunContext, RunLike

__all__ = ["BUDGETS", "TASKS", "PickingMethod", "RunContext", "RunLike"]
