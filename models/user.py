from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.fields import DatetimeField


class User(Model):
    id = fields.UUIDField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    is_staff = fields.BooleanField(default=False)
    created_at = DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"
