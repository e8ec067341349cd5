"""Configuration read from ``ROLLCALL_*`` environment variables, with safe defaults.

A secret key is generated once into the data directory when none is given, so a
fresh checkout runs without any set-up and restarts keep sessions and encrypted
temporary passwords readable.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from server.domain.import_limits import ImportLimits, limits_from_env

DEFAULT_ISSUER = "http://127.0.0.1:8000"
# the fewest database connections (and request threads) one process gets, however many share
MIN_PROCESS_CONNECTIONS = 4


@dataclass(frozen=True)
class Settings:
    """Everything a Rollcall process needs to know about its environment."""

    data_dir: Path
    database_url: str
    secret_key: str = field(repr=False)
    issuer: str = DEFAULT_ISSUER
    smtp_url: str | None = None
    oneroster_max_limit: int = 1000
    drop_settle_seconds: float = 60.0  # a dropped zip unchanged this long is complete
    drop_root: Path | None = None  # drop folders must lie inside it (default DATA_DIR/drop)
    # Peers whose X-Forwarded-For names the client (IPs or CIDR ranges); nobody's by default.
    trusted_proxies: tuple[str, ...] = ()
    database_busy_timeout: float = 10.0
    slow_query_ms: float = 500.0
    old_secret_keys: tuple[str, ...] = field(default=(), repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    import_limits: ImportLimits = field(default_factory=ImportLimits)
    # an HTTP import answers its report if done within this wait, else 202 and the run's URL
    import_wait_seconds: float = 30.0
    # on SIGTERM, in-flight imports get this long before they are rolled back (interrupted)
    shutdown_grace_seconds: float = 30.0
    # idle keep-alive connections stay open this long: longer than clients' and proxies' own
    # idle timeouts (httpx 5 s, AWS load balancers 60 s), or a reused connection races the close
    keep_alive_seconds: int = 65
    # a background job is leased this long, renewed every third of it (SPEC §9, issue 13); a
    # dead process's job and pull are taken over by another within about one lease
    job_lease_seconds: float = 45.0
    # Database connections of one ``rollcall serve``, all its processes together: each of its
    # ``serve_processes`` keeps an equal share open and runs as many requests at once
    # (:attr:`process_connections`), so more processes never mean more connections, and a
    # process under load reuses its connections instead of opening and closing them (a new
    # PostgreSQL connection costs its backend ~30 ms of CPU; issue 15).
    database_connections: int = 32
    serve_processes: int = 1  # ``rollcall serve --workers N`` tells its processes N

    @property
    def process_connections(self) -> int:
        """This process's share of :attr:`database_connections`: the connections its pool
        keeps open and the threads that serve its requests."""
        share = self.database_connections // max(self.serve_processes, 1)
        return max(share, MIN_PROCESS_CONNECTIONS)

    @property
    def drop_folders(self) -> Path:
        """Where connections' drop folders may be (``ROLLCALL_DROP_ROOT``)."""
        return self.drop_root or self.data_dir / "drop"

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The key ring: the current secret key, then the old ones still accepted for opening
        values sealed before a rotation."""
        return (self.secret_key, *self.old_secret_keys)

    @property
    def job_lease(self) -> timedelta:
        """How long a claimed job and a pull hold their lease (``ROLLCALL_JOB_LEASE_SECONDS``)."""
        return timedelta(seconds=self.job_lease_seconds)

    @property
    def job_heartbeat(self) -> timedelta:
        """How often a held lease is renewed: a third of it, so two renewals may fail."""
        return self.job_lease / 3

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from the environment (``os.environ`` by default).

    >>> load_settings({"ROLLCALL_DATA_DIR": "/tmp/rc"}).database_url
    'sqlite:////tmp/rc/rollcall.sqlite3'
    """
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("ROLLCALL_DATA_DIR") or "./data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = env.get("ROLLCALL_DATABASE_URL") or f"sqlite:///{data_dir / 'rollcall.sqlite3'}"
    secret_key = env.get("ROLLCALL_SECRET_KEY") or _stored_secret_key(data_dir)
    return Settings(
        data_dir=data_dir,
        database_url=normalise_database_url(database_url),
        secret_key=secret_key,
        issuer=(env.get("ROLLCALL_ISSUER") or DEFAULT_ISSUER).rstrip("/"),
        smtp_url=env.get("ROLLCALL_SMTP_URL") or None,
        oneroster_max_limit=int(env.get("ROLLCALL_ONEROSTER_MAX_LIMIT") or 1000),
        drop_settle_seconds=float(env.get("ROLLCALL_DROP_SETTLE_SECONDS") or 60),
        drop_root=Path(env["ROLLCALL_DROP_ROOT"]) if env.get("ROLLCALL_DROP_ROOT") else None,
        trusted_proxies=tuple(
            host.strip()
            for host in (env.get("ROLLCALL_TRUSTED_PROXIES") or "").split(",")
            if host.strip()
        ),
        database_busy_timeout=float(env.get("ROLLCALL_DATABASE_BUSY_TIMEOUT") or 10),
        slow_query_ms=float(env.get("ROLLCALL_SLOW_QUERY_MS") or 500),
        metrics_token=env.get("ROLLCALL_METRICS_TOKEN") or None,
        old_secret_keys=tuple(
            key.strip() for key in (env.get("ROLLCALL_OLD_SECRET_KEYS") or "").split(",") if key
        ),
        import_limits=limits_from_env(env),
        import_wait_seconds=float(env.get("ROLLCALL_IMPORT_WAIT_SECONDS") or 30),
        shutdown_grace_seconds=float(env.get("ROLLCALL_SHUTDOWN_GRACE_SECONDS") or 30),
        keep_alive_seconds=int(env.get("ROLLCALL_KEEP_ALIVE_SECONDS") or 65),
        job_lease_seconds=float(env.get("ROLLCALL_JOB_LEASE_SECONDS") or 45),
        database_connections=int(env.get("ROLLCALL_DATABASE_CONNECTIONS") or 32),
        serve_processes=int(env.get(SERVE_PROCESSES) or 1),
    )


# set by ``rollcall serve --workers N`` for the processes it starts (not an operator's setting)
SERVE_PROCESSES = "ROLLCALL_SERVE_PROCESSES"


def normalise_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at the psycopg 3 driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _stored_secret_key(data_dir: Path) -> str:
    """Read the generated secret key, creating it (mode 0600) on first run."""
    path = data_dir / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
