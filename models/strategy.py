from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.fields import DatetimeField, JSONField


class StrategyStatus(StrEnum):
    DRAFT = "draft"
    VALIDATED = "validated"
    ACTIVE = "active"
    ARCHIVED = "archived"
    ERROR = "error"


class StrategyType(StrEnum):
    TREND_FOLLOWING = "trend_following"
    MEAN_REVERSION = "mean_reversion"
    MOMENTUM = "momentum"
    BREAKOUT = "breakout"
    SCALPING = "scalping"
    ARBITRAGE = "arbitrage"
    GRID = "grid"
    CUSTOM = "custom"


class GenerationStatus(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    PARTIAL = "partial"


class GeneratedStrategy(Model):
    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="strategies", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    original_prompt = fields.TextField()
    generated_code = fields.TextField()
    strategy_type = fields.CharEnumField(StrategyType, max_length=32, default=StrategyType.CUSTOM)
    status = fields.CharEnumField(StrategyStatus, max_length=16, default=StrategyStatus.DRAFT)
    validation_results: dict | None = JSONField(null=True)
    parameters: dict = JSONField(default=dict)
    performance_metrics: dict = JSONField(default=dict)
    usage_count = fields.IntField(default=0)
    # The number of the StrategyVersion that holds the current code and parameters.
    version = fields.IntField(default=1)
    created_at = DatetimeField(auto_now_add=True)
    updated_at = DatetimeField(auto_now=True)

    user_id: str

    class Meta:
        table = "generated_strategies"
        # The list filters: owner + optional status/type, newest first; created_at alone for
        # the staff's admin view over everyone.
        indexes = (
            ("user_id", "created_at"),
            ("user_id", "status", "created_at"),
            ("user_id", "strategy_type", "created_at"),
            ("created_at",),
        )


class StrategyVersion(Model):
    """One state of a strategy's code and parameters; every change of either adds the next
    number, and nothing edits a version afterwards except its backtest metrics."""

    id = fields.IntField(primary_key=True)
    strategy: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.GeneratedStrategy", related_name="versions", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    generated_code = fields.TextField()
    parameters: dict = JSONField(default=dict)
    # The prompt, the refinement instruction, "manual edit" or "revert to N".
    instruction = fields.TextField()
    # Who wrote the code: "<provider>:<model>" or the editing user's email.
    author = fields.CharField(max_length=300)
    validation_results: dict | None = JSONField(null=True)
    # The latest backtest run on this version ({} if none).
    performance_metrics: dict = JSONField(default=dict)
    created_at = DatetimeField(auto_now_add=True)

    strategy_id: str

    class Meta:
        table = "strategy_versions"
        # Also the index of "every version of these strategies, in order".
        unique_together = (("strategy", "number"),)


class StrategyGenerationLog(Model):
    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="generation_logs", on_delete=fields.CASCADE
    )
    strategy: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.GeneratedStrategy",
        related_name="generation_logs",
        null=True,
        on_delete=fields.SET_NULL,
    )
    prompt = fields.TextField()
    status = fields.CharEnumField(GenerationStatus, max_length=16)
    provider = fields.CharField(max_length=32)
    model = fields.CharField(max_length=100)
    ai_response_raw = fields.TextField(null=True)
    extracted_code = fields.TextField(null=True)
    error_message = fields.TextField(null=True)
    processing_time_seconds = fields.FloatField(default=0.0)
    tokens_used = fields.IntField(default=0)
    input_tokens = fields.IntField(default=0)
    output_tokens = fields.IntField(default=0)
    # USD, from the price table at the time; null when the model's price was unknown.
    estimated_cost_usd = fields.FloatField(null=True)
    # One record per round (services/attempts.py): the first answer, then each repair.
    attempts: list = JSONField(default=list)
    repair_rounds = fields.IntField(default=0)
    # What the provider understood (indicators, periods, exits...) and the parts of the prompt
    # its code does not implement, in the user's words.
    interpretation: dict = JSONField(default=dict)
    ignored_requirements: list = JSONField(default=list)
    created_at = DatetimeField(auto_now_add=True)

    user_id: str
    strategy_id: str | None

    class Meta:
        table = "strategy_generation_logs"
        # created_at alone: staff-wide statistics windows and the admin view over everyone.
        indexes = (("user_id", "created_at"), ("user_id", "status", "created_at"), ("created_at",))
