"""Settings from command-line flags and the environment, in one frozen value.

Owns every tunable number, every environment variable name and its default (written once,
as the field's default below), and the one rule that says when the app runs in demo mode.
The API key and the browser secret are kept out of ``repr`` so that printing or logging a
``Settings`` never shows them. Imports nothing from the rest of the package.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.aimlapi.com"
MODEL = "klingai/video-v2-6-pro-image-to-video"
CREATE_PATH = "/v2/video/generations"
POLL_PATH = "/v2/video/generations"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
ADDRESS_SHARE = 3  # an address's limits, unless set: this many visitors' worth


@dataclass(frozen=True)
class Settings:
    """Everything that varies between a laptop, a Space, CI and a test.

    A field's ``env`` metadata names the variable it is read from (``settings_from_env``).
    """

    api_key: str | None = field(default=None, repr=False, metadata={"env": "AIMLAPI_KEY"})
    base_url: str = field(default=DEFAULT_BASE_URL, metadata={"env": "AIMLAPI_BASE_URL"})
    data_dir: Path = field(default=Path("kling_ui_data"), metadata={"env": "KLING_UI_DATA_DIR"})
    # The ledger's database: unset, SQLite in data_dir; "postgresql://..." to share one ledger
    # (and its job queue) among several app processes. Kept out of repr: it may hold a password.
    database_url: str | None = field(
        default=None, repr=False, metadata={"env": "KLING_UI_DATABASE_URL"}
    )
    # How long a runner's hold on a job lasts without renewal (renewed every third of it):
    # a process that dies loses its jobs to the others after this.
    lease_seconds: float = field(default=30.0, metadata={"env": "KLING_UI_LEASE_SECONDS"})
    demo: bool = field(default=False, metadata={"env": "KLING_UI_DEMO"})
    require_user_key: bool = field(default=False, metadata={"env": "KLING_UI_REQUIRE_USER_KEY"})
    # On a Hugging Face Space (SPACE_ID set) with a server key, visitors must bring their own
    # key unless the owner opts in to sharing it (KLING_UI_ALLOW_SHARED_KEY=1).
    on_space: bool = field(default=False, metadata={"env": "SPACE_ID"})
    allow_shared_key: bool = field(default=False, metadata={"env": "KLING_UI_ALLOW_SHARED_KEY"})
    # Budgets for the server's own key (USD; 0 = none): all of it per UTC day, and per visitor
    # per UTC day and jobs per visitor per hour. A daily budget also opens a Space's key to
    # its visitors, within it. Keys typed in the page are their owners' money: not counted.
    # A limit of money that can't be read stops the app (it would mean "no limit").
    daily_budget_usd: float = field(
        default=0.0, metadata={"env": "KLING_UI_DAILY_BUDGET_USD", "strict": True}
    )
    visitor_daily_budget_usd: float = field(
        default=0.0, metadata={"env": "KLING_UI_VISITOR_DAILY_BUDGET_USD", "strict": True}
    )
    visitor_jobs_per_hour: int = field(
        default=0, metadata={"env": "KLING_UI_VISITOR_JOBS_PER_HOUR", "strict": True}
    )
    # The same per client address (behind our proxies), since a fresh browser is free to
    # make: unset, ADDRESS_SHARE times the visitor's (a household or a classroom behind one
    # address still works); 0 = none. The address's own limits: ``address_limit``.
    address_daily_budget_usd: float | None = field(
        default=None,
        metadata={"env": "KLING_UI_ADDRESS_DAILY_BUDGET_USD", "strict": True, "like": 0.0},
    )
    address_jobs_per_hour: int | None = field(
        default=None,
        metadata={"env": "KLING_UI_ADDRESS_JOBS_PER_HOUR", "strict": True, "like": 0},
    )
    # The key that encrypts the history kept in the browser; made once in data_dir if unset.
    browser_secret: str | None = field(
        default=None, repr=False, metadata={"env": "KLING_UI_BROWSER_SECRET"}
    )
    # Gradio's MCP server for AI agents (``--mcp``): the API's events become its tools.
    mcp: bool = field(default=False, metadata={"env": "KLING_UI_MCP"})
    # The video models' catalogue (and each model's schema) is asked again after this many
    # seconds; meanwhile the answer kept in the database serves every replica.
    catalogue_refresh: float = field(default=3600.0, metadata={"env": "KLING_UI_CATALOGUE_REFRESH"})
    # The prompt helper ("Improve prompt"): the chat model it asks (unset: the cheapest in the
    # catalogue that takes images) and, on the server's own key, how many times a visitor may
    # ask an hour (0 = no limit; each also counts against the day's budgets).
    prompt_model: str = field(default="", metadata={"env": "KLING_UI_PROMPT_MODEL"})
    visitor_helps_per_hour: int = field(
        default=30, metadata={"env": "KLING_UI_VISITOR_HELPS_PER_HOUR", "strict": True}
    )
    # Polling: often enough that a finished video is noticed within about 2 s.
    poll_interval: float = field(default=2.0, metadata={"env": "KLING_UI_POLL_INTERVAL"})
    # Soft deadline: after this we stop watching; the job is never called failed for it.
    watch_deadline: float = field(default=30 * 60.0, metadata={"env": "KLING_UI_WATCH_DEADLINE"})
    # The job runner: jobs at the vendor at once per API key (more wait here, in order), the
    # threads that do its HTTP, how long a lost create is looked for in the usage log, the
    # poll interval while a job is younger than the shortest run seen, and how many runs
    # must have finished before that shortest one is trusted (``Runner._poll_delay``).
    max_active_per_key: int = field(default=3, metadata={"env": "KLING_UI_MAX_ACTIVE_PER_KEY"})
    runner_workers: int = field(default=8, metadata={"env": "KLING_UI_RUNNER_WORKERS"})
    lookup_window: float = field(default=300.0, metadata={"env": "KLING_UI_LOOKUP_WINDOW"})
    sparse_poll_interval: float = field(
        default=10.0, metadata={"env": "KLING_UI_SPARSE_POLL_INTERVAL"}
    )
    sparse_after_runs: int = field(default=19, metadata={"env": "KLING_UI_SPARSE_AFTER_RUNS"})
    # Demo jobs' seconds queued and generating ("queued,generating").
    demo_schedule: tuple[float, float] = field(
        default=(3.0, 12.0), metadata={"env": "KLING_UI_DEMO_SCHEDULE"}
    )
    # The web server: how many requests may wait, and worker threads (jobs wait on I/O).
    queue_size: int = field(default=256, metadata={"env": "KLING_UI_QUEUE_SIZE"})
    max_threads: int = field(default=200, metadata={"env": "KLING_UI_MAX_THREADS"})
    log_level: str = field(default="INFO", metadata={"env": "KLING_UI_LOG_LEVEL"})
    # Fair shares. A visitor is a browser (its owner token) or, for programs, the client's
    # address: at most this many jobs watched at once (each holds a server thread) and this
    # many jobs not yet ended. Sessions kept in memory (Gradio's store, oldest dropped).
    visitor_streams: int = field(default=4, metadata={"env": "KLING_UI_VISITOR_STREAMS"})
    visitor_max_jobs: int = field(default=48, metadata={"env": "KLING_UI_VISITOR_MAX_JOBS"})
    # Per client address: jobs watched and jobs not yet ended (unset: ADDRESS_SHARE times the
    # visitor's), new browsers (owner tokens) an hour, beyond which a new browser is known
    # by its address only; and the jobs waiting here to be sent, in all (0 = no limit).
    address_streams: int | None = field(
        default=None, metadata={"env": "KLING_UI_ADDRESS_STREAMS", "like": 0}
    )
    address_max_jobs: int | None = field(
        default=None, metadata={"env": "KLING_UI_ADDRESS_MAX_JOBS", "like": 0}
    )
    address_new_browsers_per_hour: int = field(
        default=100, metadata={"env": "KLING_UI_ADDRESS_NEW_BROWSERS_PER_HOUR"}
    )
    max_waiting: int = field(default=500, metadata={"env": "KLING_UI_MAX_WAITING"})
    # Of those, the most one address may have waiting (unset: a tenth of max_waiting; 0 =
    # none); that much of the room is kept for addresses with nothing waiting (the service's
    # ``waiting_room``), so a few busy addresses can't shut everyone else out.
    address_max_waiting: int | None = field(
        default=None, metadata={"env": "KLING_UI_ADDRESS_MAX_WAITING", "like": 0}
    )
    # Browser tokens remembered (per address, in memory) for the new-browsers limit: past
    # this many, the least recently seen is forgotten (a memory bound for any flood).
    browsers_kept: int = field(default=100_000, metadata={"env": "KLING_UI_BROWSERS_KEPT"})
    session_capacity: int = field(default=1000, metadata={"env": "KLING_UI_SESSION_CAPACITY"})
    # Behind a proxy (a Space), the client's address is the X-Forwarded-For entry our
    # nearest proxy wrote: with ``trusted_hops`` proxies of ours in a row, the one that many
    # entries from the end (every header line joined; what a client wrote comes first).
    trust_proxy: bool = field(default=False, metadata={"env": "KLING_UI_TRUST_PROXY"})
    trusted_hops: int = field(default=1, metadata={"env": "KLING_UI_TRUSTED_HOPS"})
    # An IPv6 client holds a whole network (a /64 is 2^64 addresses): limits count an IPv6
    # address by its first ipv6_prefix bits (``addresses.address_key``; 128: each address).
    ipv6_prefix: int = field(default=64, metadata={"env": "KLING_UI_IPV6_PREFIX"})
    # Host names the app answers to when bound to loopback, besides localhost (comma list).
    allowed_hosts: str = field(default="", metadata={"env": "KLING_UI_ALLOWED_HOSTS"})
    server_name: str = field(default="", metadata={"env": "GRADIO_SERVER_NAME"})
    # Retention: remove ended jobs, their videos and old uploads after this many days.
    # Unset: off on a laptop, 7 days on a Space; 0 turns it off.
    keep_days: float = field(default=-1.0, metadata={"env": "KLING_UI_KEEP_DAYS"})
    # An agent's image link may point at this machine or a private network (an offline rig,
    # the tests): off, since the server would fetch such a link on a stranger's behalf.
    allow_local_links: bool = field(default=False, metadata={"env": "KLING_UI_ALLOW_LOCAL_LINKS"})
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    create_read_timeout: float = 120.0
    download_timeout: float = 120.0  # between two reads
    download_total_timeout: float = 600.0  # for the whole video
    max_video_bytes: int = 500 * 1024 * 1024
    poll_retries: int = 6
    retry_after_cap: float = 30.0
    retry_backoff: float = 0.5  # urllib3 backoff_factor (and jitter) between retries
    # --- resources (issue 23) ---
    # A Space's own host name, as Hugging Face sets it ("user-space.hf.space"): the one
    # *.hf.space page that may frame the app.
    space_host: str = field(default="", metadata={"env": "SPACE_HOST"})
    # Reading a request (web.py): its headers must arrive within header_seconds, a body
    # within body_seconds (an upload's within upload_seconds: 51 MB at about 1.5 Mbit/s),
    # or the connection is closed (408 for a body). Uploads per client address an hour, in
    # number and in megabytes (0 = no limit).
    header_seconds: float = field(default=10.0, metadata={"env": "KLING_UI_HEADER_SECONDS"})
    body_seconds: float = field(default=30.0, metadata={"env": "KLING_UI_BODY_SECONDS"})
    upload_seconds: float = field(default=300.0, metadata={"env": "KLING_UI_UPLOAD_SECONDS"})
    uploads_per_hour: int = field(default=120, metadata={"env": "KLING_UI_UPLOADS_PER_HOUR"})
    upload_mb_per_hour: int = field(default=600, metadata={"env": "KLING_UI_UPLOAD_MB_PER_HOUR"})

    def __post_init__(self) -> None:
        # A Space's own key is not lent to its visitors unless the owner says so.
        if self.shared_key_locked and not self.require_user_key:
            object.__setattr__(self, "require_user_key", True)

    @property
    def budgets_on(self) -> bool:
        """Any limit on what the server's own key may spend or make."""
        return (
            self.daily_budget_usd > 0
            or self.visitor_daily_budget_usd > 0
            or self.visitor_jobs_per_hour > 0
            or self.address_limit("daily_budget_usd") > 0
            or self.address_limit("jobs_per_hour") > 0
        )

    def address_limit(self, name: str) -> float:
        """One client address's limit ``name`` (``daily_budget_usd``, ``jobs_per_hour``,
        ``streams``, ``max_jobs``): its own setting, else ``ADDRESS_SHARE`` times the
        visitor's (0: none)."""
        own = getattr(self, "address_" + name)
        return (
            own if own is not None else round(ADDRESS_SHARE * getattr(self, "visitor_" + name), 6)
        )

    @property
    def address_waiting(self) -> int:
        """The most jobs one address may have waiting here to be sent (0: no share of its
        own): ``address_max_waiting``, else a tenth of ``max_waiting``."""
        if self.address_max_waiting is not None:
            return max(self.address_max_waiting, 0)
        return max(self.max_waiting, 0) // 10

    @property
    def retention_days(self) -> float:
        """Days an ended job is kept (0: for ever); at least one while budgets count today's
        jobs from the ledger."""
        days = self.keep_days if self.keep_days >= 0 else (7.0 if self.on_space else 0.0)
        return max(days, 1.0) if days > 0 and self.budgets_on else days

    @property
    def behind_proxy(self) -> bool:
        return self.trust_proxy or self.on_space

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def ledger_where(self) -> Path | str:
        """The ledger's database: the PostgreSQL URL if set, else the SQLite file."""
        return self.database_url or self.ledger_path

    @property
    def ledger_name(self) -> str:
        """The ledger as a person may be told it: never a database URL's password."""
        if not self.database_url:
            return str(self.ledger_path)
        return "PostgreSQL at " + self.database_url.split("@")[-1]

    @property
    def demo_mode(self) -> bool:
        """Requests without a typed key go to the local simulator: asked for (--demo) or no
        key to use, unless visitors must bring their own key."""
        return (self.demo or not self.api_key) and not self.require_user_key

    @property
    def shares_key(self) -> bool:
        """The owner lends the server's key to a Space's visitors: said outright, or within a
        daily budget."""
        return self.allow_shared_key or self.daily_budget_usd > 0

    @property
    def shared_key_locked(self) -> bool:
        """A Space's own key kept from its visitors (the safe default)."""
        return self.on_space and bool(self.api_key) and not self.shares_key

    @property
    def shared_key_in_use(self) -> bool:
        """A Space whose owner lets every visitor generate on the owner's key."""
        return self.on_space and bool(self.api_key) and self.shares_key and not self.demo

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


class BadSetting(ValueError):
    """A setting that must not fall back to its default (a budget) could not be read."""


def _parse(raw: str, default: object) -> object:
    """The environment's text as the type of the field's default; ValueError if it isn't."""
    if isinstance(default, bool):
        return raw.lower() in TRUE_WORDS
    if isinstance(default, tuple):
        parts = tuple(float(x) for x in raw.split(","))
        if len(parts) != len(default):
            raise ValueError(raw)
        return parts
    if isinstance(default, (int, float)):
        value = type(default)(raw)
        if value != value:  # NaN
            raise ValueError(raw)
        return value
    if isinstance(default, Path):
        return Path(raw)
    return raw


def settings_from_env(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Read every variable named in ``Settings`` and apply overrides (the flags).

    An unreadable value is logged and its default kept; ``SPACE_ID`` counts as set when
    it is not empty."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    for f in fields(Settings):
        name = f.metadata.get("env")
        raw = (env.get(name) or "").strip() if name else ""
        if not raw:
            continue
        if name == "SPACE_ID":
            values[f.name] = True
            continue
        try:
            values[f.name] = _parse(raw, f.metadata.get("like", f.default))
            if f.metadata.get("strict") and values[f.name] < 0:  # type: ignore[operator]
                raise ValueError(raw)
        except ValueError:
            if f.metadata.get("strict"):
                unit = (
                    "dollars" if isinstance(f.metadata.get("like", f.default), float) else "videos"
                )
                raise BadSetting(
                    f"{name}={raw!r} is not a limit this app can read: give a number of {unit}"
                    " (0 for none)."
                ) from None
            log.warning("ignoring %s=%r: not a %s", name, raw, type(f.default).__name__)
    if "base_url" in values:
        values["base_url"] = str(values["base_url"]).rstrip("/")
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
