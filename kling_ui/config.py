"""Settings from command-line flags and the environment, in one frozen value.

Owns every tunable number and every environment variable name. The API key is kept
out of ``repr`` so that printing or logging a ``Settings`` never shows it.
Imports nothing from the rest of the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_BASE_URL = "https://api.aimlapi.com"
MODEL = "klingai/video-v2-6-pro-image-to-video"
CREATE_PATH = "/v2/video/generations"
POLL_PATH = "/v2/video/generations"


def _env_bool(name: str, environ: dict[str, str]) -> bool:
    return environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_float(name: str, default: float, environ: dict[str, str]) -> float:
    raw = environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    """Everything that varies between a laptop, a Space, CI and a test."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    data_dir: Path = Path("kling_ui_data")
    demo: bool = False
    require_user_key: bool = False
    # On a Hugging Face Space (SPACE_ID set) with a server key, visitors must bring their own
    # key unless the owner opts in to sharing it (KLING_UI_ALLOW_SHARED_KEY=1).
    on_space: bool = False
    allow_shared_key: bool = False
    # Polling: often enough that a finished video is noticed within about 2 s.
    poll_interval: float = 2.0
    # Soft deadline: after this we stop watching; the job is never called failed for it.
    watch_deadline: float = 30 * 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    create_read_timeout: float = 120.0
    download_timeout: float = 120.0
    max_video_bytes: int = 500 * 1024 * 1024
    poll_retries: int = 6
    retry_after_cap: float = 30.0
    retry_backoff: float = 0.5  # urllib3 backoff_factor (and jitter) between retries

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def shared_key_locked(self) -> bool:
        """A Space's own key kept from its visitors (the safe default)."""
        return self.on_space and bool(self.api_key) and not self.allow_shared_key

    @property
    def shared_key_in_use(self) -> bool:
        """A Space whose owner lets every visitor generate on the owner's key."""
        return self.on_space and bool(self.api_key) and self.allow_shared_key and not self.demo

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def settings_from_env(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Read ``AIMLAPI_KEY``, ``AIMLAPI_BASE_URL``, ``KLING_UI_*`` and apply overrides."""
    env = dict(os.environ if environ is None else environ)
    base_url = (env.get("AIMLAPI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
    api_key = (env.get("AIMLAPI_KEY") or "").strip() or None
    on_space = bool((env.get("SPACE_ID") or "").strip())
    allow_shared = _env_bool("KLING_UI_ALLOW_SHARED_KEY", env)
    settings = Settings(
        api_key=api_key,
        base_url=base_url,
        data_dir=Path(env.get("KLING_UI_DATA_DIR") or "kling_ui_data"),
        demo=_env_bool("KLING_UI_DEMO", env),
        require_user_key=_env_bool("KLING_UI_REQUIRE_USER_KEY", env)
        or (on_space and api_key is not None and not allow_shared),
        on_space=on_space,
        allow_shared_key=allow_shared,
        poll_interval=_env_float("KLING_UI_POLL_INTERVAL", 2.0, env),
        watch_deadline=_env_float("KLING_UI_WATCH_DEADLINE", 30 * 60.0, env),
    )
    return replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]
