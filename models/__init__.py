"""Tortoise models. Persistence only: rules live in services/."""

from models.dataset import Dataset, DatasetBars
from models.job import Job, JobStatus, JobTask
from models.optimization import (
    Optimization,
    OptimizationFold,
    OptimizationStatus,
    OptimizationTrial,
)
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
    "Job",
    "JobStatus",
    "JobTask",
    "Optimization",
    "OptimizationFold",
    "OptimizationStatus",
    "OptimizationTrial",
    "StrategyGenerationLog",
    "StrategyStatus",
    "StrategyType",
    "StrategyVersion",
    "User",
]
