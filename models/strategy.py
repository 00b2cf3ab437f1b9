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
    attempts: list = JSONField(default=list)
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
