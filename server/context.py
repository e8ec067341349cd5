"""What every surface of a running Rollcall shares: settings, the database, the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import Settings
from server.db.session import Database
from server.domain.secrets import SecretBox


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    database: Database
    box: SecretBox

    @classmethod
    def from_settings(cls, settings: Settings, database: Database | None = None) -> AppContext:
        return cls(
            settings=settings,
            database=database
            or Database(
                settings.database_url,
                busy_timeout=settings.database_busy_timeout,
                slow_query_ms=settings.slow_query_ms,
                pool_size=settings.process_connections,
            ),
            box=SecretBox(settings.secret_keys),
        )
