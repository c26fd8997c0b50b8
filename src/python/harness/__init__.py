"""The development harness: starts REAL servers (nats-server, the MongoDB-wire server),
our services and the web client as processes, for the tests, `./run` and the benchmark.

Never imported by a service or by the web client, so no image ships it (nor the GPL
SecantusDB it starts)."""
