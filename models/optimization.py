"""An optimisation of a strategy's parameters: its spec, its state, its trials and folds.

Everything a job needs to run or resume it is on the row (the code and parameters as they were
when it was asked for, the data, the search spec), so any worker can take it.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.fields import DatetimeField, JSONField


class OptimizationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Optimization(Model):
    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="optimizations", on_delete=fields.CASCADE
    )
    strategy: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.GeneratedStrategy", related_name="optimizations", on_delete=fields.CASCADE
    )
    # The strategy's version, code and parameters when the optimisation was asked for.
    strategy_version = fields.IntField()
    code = fields.TextField()
    base_parameters: dict = JSONField(default=dict)
    status = fields.CharEnumField(
        OptimizationStatus, max_length=16, default=OptimizationStatus.QUEUED
    )
    objective = fields.CharField(max_length=40)
    # The validated request: parameters, method, budget, constraint, walk-forward, options.
    spec: dict = JSONField(default=dict)
    # Where the bars come from ({"sample": name} or {"datasetId": id} or {"marketData": true}).
    data_source: dict = JSONField(default=dict)
    # The bars of a marketData request (services.market_data.Bars.to_bytes, zlib-compressed).
    data: bytes | None = fields.BinaryField(null=True)
    trials_done = fields.IntField(default=0)
    trials_total = fields.IntField(default=0)
    best_parameters: dict | None = JSONField(null=True)
    best_metrics: dict | None = JSONField(null=True)
    walk_forward_efficiency = fields.FloatField(null=True)
    warnings: list = JSONField(default=list)
    # The look-ahead verdict of the best parameters (without folds) or of every fold's.
    look_ahead: dict = JSONField(default=dict)
    error_message = fields.TextField(null=True)
    cancel_requested = fields.BooleanField(default=False)
    created_at = DatetimeField(auto_now_add=True)
    started_at = DatetimeField(null=True)
    finished_at = DatetimeField(null=True)

    user_id: str
    strategy_id: str

    class Meta:
        table = "optimizations"
        indexes = (("user_id", "created_at"), ("user_id", "strategy_id", "created_at"))


class OptimizationTrial(Model):
    """One evaluated parameter set; (optimization, number) is unique, so a batch evaluated
    twice (a redelivered task) stores each trial once."""

    id = fields.IntField(primary_key=True)
    optimization: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Optimization", related_name="trials", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    fold = fields.IntField(null=True)
    parameters: dict = JSONField(default=dict)
    metrics: dict = JSONField(default=dict)
    # The objective's value; null when undefined (no trades), failed or beyond the constraint.
    value = fields.FloatField(null=True)
    created_at = DatetimeField(auto_now_add=True)

    optimization_id: str

    class Meta:
        table = "optimization_trials"
        unique_together = (("optimization", "number"),)


class OptimizationFold(Model):
    """A walk-forward fold's result: the best in-sample parameters and how they did after."""

    id = fields.IntField(primary_key=True)
    optimization: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.Optimization", related_name="folds", on_delete=fields.CASCADE
    )
    index = fields.IntField()
    in_sample_bars: list = JSONField(default=list)  # [first, end) bar indexes
    out_of_sample_bars: list = JSONField(default=list)
    best_parameters: dict = JSONField(default=dict)
    in_sample: dict = JSONField(default=dict)
    out_of_sample: dict = JSONField(default=dict)
    look_ahead: dict = JSONField(default=dict)

    optimization_id: str

    class Meta:
        table = "optimization_folds"
        unique_together = (("optimization", "index"),)
