"""The whole system on one machine: `./run` (see the README)."""
