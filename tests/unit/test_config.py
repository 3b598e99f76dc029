"""Configuration: typed parsing, clear errors, redacted secrets, and the README table kept in step."""

from __future__ import annotations

import subprocess
import sys

import pytest

from config import PROJECT_ROOT, Config, ConfigError, redact_url, settings_table_markdown


def test_defaults_are_typed() -> None:
    cfg = Config.from_env({})
    assert cfg.PORT == 8000 and isinstance(cfg.PORT, int)
    assert cfg.SESSION_COOKIE_SECURE is False
    assert cfg.SERVICE_TYPE == "all"
    assert cfg.needs_embedded_postgres and cfg.needs_embedded_redis


def test_values_are_parsed_from_strings() -> None:
    cfg = Config.from_env({"PORT": " 9000 ", "SESSION_COOKIE_SECURE": "yes", "SERVICE_TYPE": "Worker",
                           "LOG_LEVEL": "debug", "CANCEL_CHECK_INTERVAL_SECONDS": "0.25"})
    assert (cfg.PORT, cfg.SESSION_COOKIE_SECURE, cfg.SERVICE_TYPE, cfg.LOG_LEVEL) == (9000, True, "worker", "DEBUG")
    assert cfg.CANCEL_CHECK_INTERVAL_SECONDS == 0.25


@pytest.mark.parametrize(("env", "message"), [
    ({"PORT": "eighty"}, "PORT='eighty' is not an integer"),
    ({"PORT": "0"}, "PORT='0' is below the minimum 1"),
    ({"SERVICE_TYPE": "both"}, "SERVICE_TYPE='both' is not one of web, worker, all"),
    ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE='maybe' is not a boolean"),
    ({"DB_POOL_MIN": "12", "DB_POOL_MAX": "11"}, "DB_POOL_MIN=12 is larger than DB_POOL_MAX=11"),
    ({"DB_POOL_MAX": "5"}, "DB_POOL_MAX=5 is below WEB_THREADS + 2 = 10"),
    ({"PATH_MAPPING": "/media"}, "PATH_MAPPING entry '/media' is not 'server_prefix=local_prefix'"),
    ({"JELLYFIN_URL": "jellyfin:8096"}, "JELLYFIN_URL='jellyfin:8096' is not an http:// or https:// URL"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL='http://x' is not a redis:// URL"),
])
def test_invalid_values_name_the_variable_and_value(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_env(env)
    assert message in str(err.value)


def test_secret_values_never_appear_in_errors_repr_or_describe() -> None:
    with pytest.raises(ConfigError) as err:
        Config.from_env({"DATABASE_URL": "mysql://root:hunter2secret@db/x"})
    assert "hunter2secret" not in str(err.value) and "***" in str(err.value)
    cfg = Config.from_env({"ADMIN_PASSWORD": "hunter2secret", "API_TOKEN": "tok-abcdef123",
                           "DATABASE_URL": "postgresql://u:pw-zz9@h/db", "POSTGRES_PASSWORD": "pg-secret-1"})
    shown = repr(cfg) + str(cfg.describe())
    for secret in ("hunter2secret", "tok-abcdef123", "pw-zz9", "pg-secret-1"):
        assert secret not in shown
    shown_values = {name: value for name, value, _ in cfg.describe()}
    assert shown_values["ADMIN_PASSWORD"] == "set" and shown_values["SECRET_KEY"] == "not set"


def test_database_url_is_built_from_parts() -> None:
    cfg = Config.from_env({"POSTGRES_HOST": "db.lan", "POSTGRES_USER": "music", "POSTGRES_PASSWORD": "p@ss/word",
                           "POSTGRES_DB": "am", "POSTGRES_PORT": "5433"})
    assert cfg.database_url == "postgresql://music:p%40ss%2Fword@db.lan:5433/am"
    assert not cfg.needs_embedded_postgres
    assert redact_url(cfg.database_url) == "postgresql://music:***@db.lan:5433/am"
    explicit = Config.from_env({"DATABASE_URL": "postgresql://a@b/c", "POSTGRES_HOST": "ignored"})
    assert explicit.database_url == "postgresql://a@b/c"


def test_unknown_setting_in_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_mapping({"PORTT": 1})


def test_readme_settings_table_matches_config() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert settings_table_markdown() in readme, "README settings table is stale: run `python config.py --markdown`"


def test_bad_value_stops_start_up_with_one_line() -> None:
    result = subprocess.run([sys.executable, "-c", "import config; config.load_or_exit()"], cwd=PROJECT_ROOT,
                            env={"PATH": "/usr/bin:/bin", "NUM_WORKERS": "lots"}, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "AudioMuse configuration error: NUM_WORKERS='lots' is not an integer"


def test_the_web_process_does_not_load_the_audio_stack() -> None:
    """The web process holds the index; the analysis stack (scipy, ONNX Runtime, librosa) belongs to workers."""
    code = ("import sys, app; heavy = [m for m in ('scipy', 'onnxruntime', 'librosa', 'numba', 'sklearn') "
            "if m in sys.modules]; print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""
