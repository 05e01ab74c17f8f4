"""The HTTP edge of the functions: the Powertools resolver and its middlewares (authentication
by project token or admin key, rate limits, request bodies in the encodings SDKs send them), the
direct invocations of a function (the nightly job's events, the operator's calls), and the
response models that document each route in the OpenAPI document.

May import: core, storage, experiments (the request schemas), alerts (its queue's messages, for
AutomationFunction). Nothing below routes imports it.
"""
