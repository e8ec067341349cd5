"""Where a connection's records come from when nobody pushes them: an upstream OneRoster API
that a ``oneroster_rest`` connection pulls (its credentials, schedules and delta state), and a
drop folder whose zips the worker imports.

The client secret is sealed with a :class:`~server.domain.secrets.SecretBox` bound to the
connection id, never kept in clear; only district admins change these settings, and every change
is audited (without the secret).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import Connection, ConnectionKind, utcnow
from server.domain import audit
from server.domain.access import ensure_can_manage_connections
from server.domain.actors import Actor
from server.domain.secrets import SecretBox
from server.domain.vocabulary import check_texts
from server.errors import Conflict, InvalidValue, NotFound

# --- upstreams of pull connections (kind oneroster_rest) -------------------------------------

UPSTREAM_PURPOSE = "upstream"


VERSIONS = ("1.1", "1.2")
DEFAULT_FULL_EVERY_HOURS = 24


@dataclass(frozen=True)
class Upstream:
    """Where a pull connection reads from; ``client_secret`` is clear text (never logged).

    ``token_url`` None means the upstream signs with OAuth 1.0a (a 1.1 hub): the client id and
    secret are the consumer key and secret. ``version`` None: detected from the URL or the
    shapes it serves.
    """

    base_url: str
    token_url: str | None
    client_id: str
    client_secret: str = field(repr=False)
    every_minutes: int | None = None
    version: str | None = None
    full_every_hours: int = DEFAULT_FULL_EVERY_HOURS

    @property
    def auth(self) -> str:
        return "oauth2" if self.token_url else "oauth1"


@dataclass(frozen=True)
class PullState:
    """What the last applied pulls left: the delta high-water mark and the last full pull."""

    high_water: str | None = None
    last_full_at: datetime | None = None

    def needs_full(self, upstream: Upstream, now: datetime) -> bool:
        """A full pull is due: never pulled fully, or the last full one is too old (only a full
        pull deactivates what the upstream dropped)."""
        if self.high_water is None or self.last_full_at is None:
            return True
        return now - self.last_full_at >= timedelta(hours=upstream.full_every_hours)


def set_upstream(
    session: Session,
    actor: Actor,
    connection: Connection,
    *,
    box: SecretBox,
    base_url: str,
    token_url: str | None,
    client_id: str,
    client_secret: str | None,
    every_minutes: int | None = None,
    version: str | None = None,
    full_every_hours: int | None = None,
) -> None:
    """Give a ``oneroster_rest`` connection its upstream API and credentials.

    ``token_url`` set: OAuth 2 client credentials; None: OAuth 1.0a signatures (1.1 hubs).
    ``client_secret`` None keeps the stored one (the secret is write-only: a form that edits the
    schedule need not repeat it). ``box`` is a :class:`SecretBox` for the purpose ``upstream``:
    the secret is kept sealed in ``Connection.settings`` (bound to the connection id).

    :raises InvalidValue: not a pull connection, a URL that is not http(s), an empty client id
        or secret, an unknown version, a schedule under 1 minute or a full schedule under 1 hour.
    """
    ensure_can_manage_connections(actor)
    if connection.tenant_id != actor.tenant_id:
        raise NotFound("No such connection.")
    if connection.kind != ConnectionKind.ONEROSTER_REST:
        raise InvalidValue("Only a oneroster_rest connection has an upstream.", field="kind")
    token_url = (token_url or "").strip() or None
    check_texts([base_url, token_url or "", client_id, version or ""], "upstream")
    for name, url in (("upstream", base_url), ("token_url", token_url)):
        if url is not None and not url.startswith(("http://", "https://")):
            raise InvalidValue(f"{name} must be an http(s) URL, not {url!r}.", field=name)
    previous = (connection.settings or {}).get("upstream") or {}
    sealed_before = previous.get("client_secret_sealed")
    if not client_id.strip() or not (client_secret or (client_secret is None and sealed_before)):
        raise InvalidValue("The upstream needs a client id and a client secret.", field="client")
    if version is not None and version not in VERSIONS:
        raise InvalidValue(
            f"Unknown OneRoster version {version!r}; expected 1.1 or 1.2.", field="version"
        )
    if every_minutes is not None and every_minutes < 1:
        raise InvalidValue("The schedule is a number of minutes (1 or more).", field="every")
    if full_every_hours is not None and full_every_hours < 1:
        raise InvalidValue("A full pull runs every 1 hour or more.", field="full_every")
    sealed = (
        base64.b64encode(box.seal(client_secret, connection.id)).decode("ascii")
        if client_secret
        else sealed_before
    )
    connection.settings = {
        **(connection.settings or {}),
        "upstream": {
            "base_url": base_url.rstrip("/"),
            "token_url": token_url,
            "client_id": client_id.strip(),
            "client_secret_sealed": sealed,
            "every_minutes": every_minutes,
            "version": version,
            "full_every_hours": full_every_hours or DEFAULT_FULL_EVERY_HOURS,
        },
    }
    audit.record(
        session,
        actor,
        "connection.set_upstream",
        target_kind="connection",
        target_id=connection.id,
        target_label=connection.name,
        changes={
            "upstream": [previous.get("base_url"), base_url],
            "auth": [None, "oauth2" if token_url else "oauth1"],
            "every_minutes": [previous.get("every_minutes"), every_minutes],
            "secret_changed": [None, bool(client_secret)],
        },
    )


def upstream_of(connection: Connection, box: SecretBox) -> Upstream | None:
    """The connection's upstream with its secret unsealed, or None if it has none."""
    stored = (connection.settings or {}).get("upstream")
    if not stored:
        return None
    secret = box.open(base64.b64decode(stored["client_secret_sealed"]), connection.id)
    return Upstream(
        base_url=stored["base_url"],
        token_url=stored.get("token_url"),
        client_id=stored["client_id"],
        client_secret=secret,
        every_minutes=stored.get("every_minutes"),
        version=stored.get("version"),
        full_every_hours=stored.get("full_every_hours") or DEFAULT_FULL_EVERY_HOURS,
    )


def pull_state(connection: Connection) -> PullState:
    stored = (connection.settings or {}).get("pull") or {}
    last_full = stored.get("last_full_at")
    return PullState(
        high_water=stored.get("high_water"),
        last_full_at=datetime.fromisoformat(last_full) if last_full else None,
    )


def record_pull(
    session: Session, connection_id: str, *, high_water: str | None, full: bool
) -> None:
    """Remember an applied pull: the newest ``dateLastModified`` it saw (the next delta asks
    for what changed after it) and, for a full pull, when it ran."""
    connection = session.get(Connection, connection_id)
    if connection is None:
        return
    state = dict((connection.settings or {}).get("pull") or {})
    if high_water and _later(high_water, state.get("high_water")):
        state["high_water"] = high_water
    if full:
        state["last_full_at"] = utcnow().isoformat()
    connection.settings = {**(connection.settings or {}), "pull": state}


def scheduled_connections(session: Session) -> list[Connection]:
    """Pull connections (of every tenant) that have a schedule."""
    found = session.scalars(
        select(Connection).where(Connection.kind == ConnectionKind.ONEROSTER_REST)
    )
    return [c for c in found if ((c.settings or {}).get("upstream") or {}).get("every_minutes")]


def record_sync(session: Session, connection_id: str, result: str) -> None:
    """Remember when a connection last synced and how it went (shown to its admins)."""
    connection = session.get(Connection, connection_id)
    if connection is not None:
        connection.last_sync_at = utcnow()
        connection.last_sync_result = result[:2000]


def _later(mark: str, than: str | None) -> bool:
    if not than:
        return True
    try:
        return datetime.fromisoformat(mark) > datetime.fromisoformat(than)
    except ValueError:
        return mark > than


# --- drop folders: where a hub or SIS delivers OneRoster zips by SFTP ------------------------

DROP_KINDS = (ConnectionKind.ONEROSTER_CSV, ConnectionKind.ONEROSTER_REST, ConnectionKind.CSV)


def set_drop_dir(
    session: Session, actor: Actor, connection: Connection, path: str | None, *, root: Path
) -> None:
    """Make the worker watch ``path`` for this connection's zips (None: stop watching).

    The folder must exist, be absolute and lie inside ``root`` (``ROLLCALL_DROP_ROOT``), and no
    other connection may watch it or a folder inside or around it: a district admin can point
    the worker only at the folders the operator set aside for deliveries, never at one another
    connection (of any tenant) watches. ``done/`` and ``failed/`` are made beside the zips.

    :raises InvalidValue: a relative, missing or outside folder, or a connection that does not
        import files. :raises Conflict: another connection watches that folder.
    """
    ensure_can_manage_connections(actor)
    if connection.tenant_id != actor.tenant_id:
        raise NotFound("No such connection.")
    previous = (connection.settings or {}).get("drop_dir")
    if path:
        check_texts(path, "drop folder")
        if connection.kind not in DROP_KINDS:
            raise InvalidValue(
                f"A {connection.kind} connection does not import files: a drop folder is for "
                "oneroster, oneroster_rest and csv connections.",
                field="drop_dir",
            )
        path = str(_drop_folder(session, connection, Path(path), root))
    connection.settings = {**(connection.settings or {}), "drop_dir": path or None}
    audit.record(
        session,
        actor,
        "connection.set_drop_dir",
        target_kind="connection",
        target_id=connection.id,
        target_label=connection.name,
        changes={"drop_dir": [previous, path or None]},
    )


def _drop_folder(session: Session, connection: Connection, folder: Path, root: Path) -> Path:
    if not folder.is_absolute() or not folder.is_dir():
        raise InvalidValue(
            f"The drop folder {str(folder)!r} must be an existing absolute path.", field="drop_dir"
        )
    folder, root = folder.resolve(), root.resolve()
    if not folder.is_relative_to(root):
        raise InvalidValue(
            f"The drop folder must be inside {root} (ROLLCALL_DROP_ROOT), where the operator "
            "keeps the delivery folders.",
            field="drop_dir",
        )
    for other in watched_connections(session):
        theirs = (drop_dir_of(other) or root).resolve()
        if other.id != connection.id and (
            folder.is_relative_to(theirs) or theirs.is_relative_to(folder)
        ):
            raise Conflict("Another connection already watches this folder or one inside it.")
    return folder


def drop_dir_of(connection: Connection) -> Path | None:
    stored = (connection.settings or {}).get("drop_dir")
    return Path(stored) if stored else None


def watched_connections(session: Session) -> list[Connection]:
    """Connections (of every tenant) that watch a drop folder."""
    found = session.scalars(select(Connection).where(Connection.kind.in_(DROP_KINDS)))
    return [c for c in found if drop_dir_of(c) is not None]


def lock_for_scheduling(session: Session, connection_id: str) -> bool:
    """Whether this process decides now what to queue for a connection (pulls, scans).

    On PostgreSQL the connection row is locked ``FOR UPDATE SKIP LOCKED``: one process at a
    time decides, the others skip it this poll. SQLite's write lock serialises them already.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    locked = session.scalars(
        select(Connection.id)
        .where(Connection.id == connection_id)
        .with_for_update(skip_locked=True)
    ).first()
    return locked is not None
