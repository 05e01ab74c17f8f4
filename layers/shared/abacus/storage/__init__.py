"""Data access: one module per table. Nothing outside this package builds DynamoDB requests."""
