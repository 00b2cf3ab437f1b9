"""Business rules: generation, validation, storage rules. Knows nothing of GraphQL."""
