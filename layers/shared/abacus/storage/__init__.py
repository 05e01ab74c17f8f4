"""Data access: one module per table (or per kind of item in the projects table), in PynamoDB.
Nothing outside this package builds DynamoDB requests; each module's docstring states its keys and
the most requests a second one key takes.

May import: core. No domain package: what storage knows of a domain is its items' shape.
"""
