"""The local stack: Abacus on one machine with no Docker and no AWS account.

A moto server stands in for DynamoDB, and a small HTTP gateway turns requests into the API Gateway
HTTP API (payload 2.0) events that the deployed functions receive. Tables, routes and function
settings are read from template.yaml, so the local stack cannot drift from what is deployed.
"""
