"""Tortoise models. Persistence only: rules live in services/."""

from models.dataset import Dataset, DatasetBars
from models.strategy import (
    GeneratedStrategy,
    GenerationStatus,
    StrategyGenerationLog,
    StrategyStatus,
    StrategyType,
    StrategyVersion,
)
from models.user import User

__all__ = [
    "Dataset",
    "DatasetBars",
    "GeneratedStrategy",
    "GenerationStatus",
    "StrategyGenerationLog",
    "StrategyStatus",
    "StrategyType",
    "StrategyVersion",
    "User",
]
