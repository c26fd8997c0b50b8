"""Test helpers: real servers (NATS, MongoDB-wire), fakes, and pytest fixtures.

Use the fixtures from a test package's conftest.py:

    from testkit.fixtures import *  # noqa: F403
"""
