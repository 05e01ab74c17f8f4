"""How long the API may take to answer: what its clients (the console, the command line, the
tests' clients) can count on. Constants only, so that anything may import them."""

# API Gateway ends a request it has waited this long for (an HTTP API's integration timeout: the
# template sets none, so it is the default, which is also the most API Gateway allows).
GATEWAY_TIMEOUT_SECONDS = 30.0
# How long a recompute waits for its run before it answers 202 pending: inside the gateway's 30 s,
# the rest for planning the run and reading its snapshot.
RECOMPUTE_WAIT_SECONDS = 20.0
# How long the console and the command line follow a recompute's run before they say it is late
# (it goes on): a first run of a million users takes 2 to 12 minutes at NightlyMaxConcurrency 100
# (bench/RESULTS.md, "The nightly job fanned out"); most experiments take seconds.
RECOMPUTE_FOLLOW_SECONDS = 900.0
