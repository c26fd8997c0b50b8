import pytest

from common.settings import EventingSettings, ServiceSettings, load_settings

KEY = "k" * 32


@pytest.fixture
def env(monkeypatch):
    for name in ("MONGO_URI", "JWT_KEY", "NATS_URL", "NATS_CLIENT_ID", "PORT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_missing_variables_stop_the_process_with_one_line_naming_them(env, capsys):
    env.setenv("JWT_KEY", KEY)
    with pytest.raises(SystemExit) as exit_info:
        load_settings(EventingSettings)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "configuration error: MONGO_URI must be defined; NATS_URL must be defined"


def test_invalid_variable_is_named(env, capsys):
    env.setenv("MONGO_URI", "mongodb://x")
    env.setenv("JWT_KEY", KEY)
    env.setenv("PORT", "not-a-port")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    err = capsys.readouterr().err
    assert "PORT is invalid" in err
    assert err.count("\n") == 1


def test_empty_variable_counts_as_invalid(env, capsys):
    env.setenv("MONGO_URI", "")
    env.setenv("JWT_KEY", KEY)
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    assert "MONGO_URI is invalid" in capsys.readouterr().err


def test_defaults_and_client_id_from_host_name(env):
    env.setenv("MONGO_URI", "mongodb://x")
    env.setenv("JWT_KEY", KEY)
    env.setenv("NATS_URL", "nats://n:4222")
    settings = load_settings(EventingSettings)
    assert settings.nats_client_id  # the host name (the pod name in Kubernetes)
    assert settings.cookie_secure is True
    assert settings.jwt_key.get_secret_value() == KEY
    assert KEY not in repr(settings)


def test_short_jwt_key_is_refused(env, capsys):
    env.setenv("MONGO_URI", "mongodb://x")
    env.setenv("JWT_KEY", "asdf")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings)
    assert (
        "JWT_KEY is invalid: must be at least 32 characters; make one with"
        in capsys.readouterr().err
    )


def test_the_stream_gets_the_environments_replicas(env):
    env.setenv("MONGO_URI", "mongodb://x")
    env.setenv("JWT_KEY", KEY)
    env.setenv("NATS_URL", "nats://a:4222,nats://b:4222,nats://c:4222")
    assert load_settings(EventingSettings).stream_config().num_replicas == 1  # one server
    env.setenv("STREAM_REPLICAS", "3")
    assert load_settings(EventingSettings).stream_config().num_replicas == 3
