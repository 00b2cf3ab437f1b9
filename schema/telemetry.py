"""Counts GraphQL operations by type for /metrics (errors are counted in schema.errors)."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from services import telemetry


class OperationTelemetry(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        try:
            yield
        finally:
            try:
                kind = self.execution_context.operation_type.value
            except Exception:  # no document (unparsable, missing) or no such operation
                kind = "unknown"
            telemetry.GRAPHQL_OPERATIONS.labels(kind).inc()
