"""The launcher's own decisions, without starting a server."""

from __future__ import annotations

import pytest

from ticketing_web.launcher import api_url, fingerprint, state_settings


def test_without_redis_one_worker_keeps_its_tabs_to_itself(monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("WEB_WORKERS", raising=False)
    assert state_settings() == {"GRANIAN_WORKERS": "1"}  # not the host's CPU count


def test_with_redis_the_state_is_shared_and_its_lock_outlasts_a_slow_call(monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("WEB_WORKERS", "3")
    monkeypatch.setenv("API_TIMEOUT", "4")
    monkeypatch.delenv("REFLEX_REDIS_LOCK_EXPIRATION", raising=False)
    assert state_settings() == {
        "GRANIAN_WORKERS": "3",
        "REFLEX_STATE_MANAGER_MODE": "redis",
        "REFLEX_REDIS_URL": "redis://redis:6379/0",
        "REFLEX_REDIS_LOCK_EXPIRATION": "12000",
    }


@pytest.mark.parametrize(
    ("workers", "redis", "says"),
    [
        ("2", "", "WEB_WORKERS above 1 needs REDIS_URL"),
        ("0", "redis://r/0", "whole number of at least 1, not '0'"),
        ("many", "", "whole number of at least 1, not 'many'"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_by_name(monkeypatch, workers, redis, says) -> None:
    monkeypatch.setenv("WEB_WORKERS", workers)
    monkeypatch.setenv("REDIS_URL", redis)
    with pytest.raises(SystemExit, match=says):
        state_settings()


def test_the_websocket_goes_to_the_page_host_unless_told(monkeypatch) -> None:
    monkeypatch.delenv("API_URL", raising=False)
    assert api_url(3000) == "http://localhost:3000"
    monkeypatch.setenv("API_URL", "https://ticketing.dev/")
    assert api_url(3000) == "https://ticketing.dev"


def test_a_build_is_known_by_what_it_was_built_from(tmp_path) -> None:
    """An image's app root holds no `ticketing_web` folder (the package is installed):
    the installed package counts instead."""
    (tmp_path / "rxconfig.py").write_text("config = 1")
    built = fingerprint(tmp_path, "http://localhost:3000")
    assert fingerprint(tmp_path, "http://localhost:3000") == built
    assert fingerprint(tmp_path, "http://localhost:8080") != built  # compiled in
    (tmp_path / "rxconfig.py").write_text("config = 2")
    assert fingerprint(tmp_path, "http://localhost:3000") != built
