from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.fields import DatetimeField, JSONField


class Dataset(Model):
    """A user's market data, imported once and reused by backtests and optimisations.

    The bars live in DatasetBars, one compressed blob per dataset, so listing datasets never
    reads them (services/datasets.py says why a blob and not a row per bar).
    """

    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "models.User", related_name="datasets", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    symbol = fields.CharField(max_length=64, null=True)
    timeframe = fields.CharField(max_length=16, null=True)
    # The zone naive times in the upload were read in; the bars themselves are UTC.
    time_zone = fields.CharField(max_length=64, default="UTC")
    bar_count = fields.IntField()
    start = DatetimeField(null=True)
    end = DatetimeField(null=True)
    # Compressed size of the bars: what counts against the user's storage quota.
    stored_bytes = fields.BigIntField()
    import_report: dict = JSONField(default=dict)
    created_at = DatetimeField(auto_now_add=True)

    user_id: str

    class Meta:
        table = "datasets"
        unique_together = (("user", "name"),)
        indexes = (("user_id", "created_at"),)


class DatasetBars(Model):
    """The bars of one Dataset: zlib over services.market_data.Bars.to_bytes()."""

    id = fields.IntField(primary_key=True)
    dataset: fields.OneToOneRelation = fields.OneToOneField(
        "models.Dataset", related_name="content", on_delete=fields.CASCADE
    )
    data = fields.BinaryField()

    dataset_id: str

    class Meta:
        table = "dataset_bars"
