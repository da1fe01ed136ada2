"""Settings come from the environment; the key never shows in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from kling_ui.config import DEFAULT_BASE_URL, Settings, settings_from_env


def test_defaults_without_environment():
    settings = settings_from_env({})
    assert settings.api_key is None
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.data_dir == Path("kling_ui_data")
    assert not settings.demo and not settings.require_user_key
    assert settings.poll_interval == 2.0 and settings.watch_deadline == 1800.0


def test_environment_is_read():
    settings = settings_from_env(
        {
            "AIMLAPI_KEY": "  sk-env-key-123  ",
            "AIMLAPI_BASE_URL": "http://127.0.0.1:8000/",
            "KLING_UI_DATA_DIR": "/tmp/kd",
            "KLING_UI_DEMO": "yes",
            "KLING_UI_REQUIRE_USER_KEY": "1",
            "KLING_UI_POLL_INTERVAL": "0.5",
            "KLING_UI_WATCH_DEADLINE": "60",
        }
    )
    assert settings.api_key == "sk-env-key-123"
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.data_dir == Path("/tmp/kd")
    assert settings.demo and settings.require_user_key
    assert (settings.poll_interval, settings.watch_deadline) == (0.5, 60.0)
    assert settings.ledger_path == Path("/tmp/kd/history.sqlite3")
    assert settings.videos_dir == Path("/tmp/kd/videos")


@pytest.mark.parametrize("raw", ["", "soon", "nan?"])
def test_unreadable_numbers_fall_back_to_defaults(raw):
    assert settings_from_env({"KLING_UI_POLL_INTERVAL": raw}).poll_interval == 2.0


def test_overrides_win():
    assert settings_from_env({}, demo=True).demo


def test_key_is_not_in_repr():
    settings = Settings(api_key="sk-very-secret-999")
    assert "sk-very-secret-999" not in repr(settings)
    assert "sk-very-secret-999" not in repr(settings.with_(poll_interval=1))


@pytest.mark.parametrize(
    "env, require, locked, shared",
    [
        ({"SPACE_ID": "me/kling", "AIMLAPI_KEY": "sk-owner-1"}, True, True, False),
        (
            {"SPACE_ID": "me/kling", "AIMLAPI_KEY": "sk-owner-1", "KLING_UI_ALLOW_SHARED_KEY": "1"},
            False,
            False,
            True,
        ),
        ({"SPACE_ID": "me/kling"}, False, False, False),  # no key: demo mode, nothing to spend
        ({"AIMLAPI_KEY": "sk-owner-1"}, False, False, False),  # a laptop: the owner is the user
    ],
)
def test_a_space_keeps_its_owners_key_from_visitors_unless_told(env, require, locked, shared):
    """Item 15: on a Space with a server key, visitors bring their own unless the owner opts in."""
    settings = settings_from_env(env)
    assert settings.require_user_key is require
    assert settings.shared_key_locked is locked
    assert settings.shared_key_in_use is shared


@pytest.mark.parametrize(
    "name, raw, field, default",
    [
        ("KLING_UI_DEMO_SCHEDULE", "3", "demo_schedule", (3.0, 12.0)),
        ("KLING_UI_DEMO_SCHEDULE", "a,b", "demo_schedule", (3.0, 12.0)),
        ("KLING_UI_POLL_INTERVAL", "nan", "poll_interval", 2.0),
        ("KLING_UI_QUEUE_SIZE", "lots", "queue_size", 256),
    ],
)
def test_an_unreadable_value_is_logged_and_its_default_kept(name, raw, field, default, caplog):
    assert getattr(settings_from_env({name: raw}), field) == default
    assert name in caplog.text


def test_every_knob_is_read_from_its_variable():
    settings = settings_from_env(
        {
            "KLING_UI_DEMO_SCHEDULE": "1,2.5",
            "KLING_UI_QUEUE_SIZE": "64",
            "KLING_UI_MAX_THREADS": "50",
            "KLING_UI_LOG_LEVEL": "debug",
            "KLING_UI_BROWSER_SECRET": "s3cret-browser-key",
        }
    )
    assert settings.demo_schedule == (1.0, 2.5)
    assert (settings.queue_size, settings.max_threads, settings.log_level) == (64, 50, "debug")
    assert settings.browser_secret == "s3cret-browser-key"
    assert "s3cret-browser-key" not in repr(settings)


def test_every_setting_is_in_the_readmes_configuration():
    """A setting a person can't find is a setting they can't use: each environment variable
    of ``Settings`` is named in the README."""
    import dataclasses

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    names = [f.metadata["env"] for f in dataclasses.fields(Settings) if "env" in f.metadata]
    assert len(names) > 30
    assert [name for name in names if f"`{name}`" not in readme] == []
