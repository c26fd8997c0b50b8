"""Shared library of the Ticketing services: the Python twin of `@rallycoding/common`.

One place for each cross-service concept: errors (`errors`), authentication (`auth`),
events (`events`), the NATS client manager (`nats_client`), Mongo helpers (`mongo`),
settings (`settings`) and the FastAPI app factory (`app`). Test helpers live in
`testkit`.
"""
