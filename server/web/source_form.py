"""The connections page's pull and drop-folder form: form fields to the same domain calls as
``rollcall connection add|set`` (:func:`~server.domain.sources.set_upstream`,
:func:`~server.domain.sources.set_drop_dir`).

The client secret is write-only: the page never shows it, and a blank secret field keeps the
stored one, so changing a schedule does not need the secret again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.context import AppContext
from server.db import Connection, ConnectionKind
from server.domain import sources
from server.domain.actors import Actor
from server.errors import InvalidValue
from server.imports.pull import upstream_box


def apply_source_form(
    session: Session,
    actor: Actor,
    connection: Connection,
    form: dict[str, Any],
    context: AppContext,
) -> None:
    """Set the upstream (``oneroster_rest``) and the drop folder from the submitted fields.

    :raises InvalidValue: a number field that is not a whole number, or what the domain refuses.
    """
    if connection.kind == ConnectionKind.ONEROSTER_REST and "upstream" in form:
        oauth1 = _text(form, "auth") == "oauth1"
        secret = str(form.get("client_secret") or "")
        sources.set_upstream(
            session,
            actor,
            connection,
            box=upstream_box(context),
            base_url=_text(form, "upstream") or "",
            token_url=None if oauth1 else _text(form, "token_url"),
            client_id=_text(form, "client_id") or "",
            client_secret=secret or None,
            every_minutes=_number(form, "every", "pull every (minutes)"),
            version=_text(form, "version"),
            full_every_hours=_number(form, "full_every", "full pull every (hours)"),
        )
    if "drop_dir" in form:
        current = (connection.settings or {}).get("drop_dir")
        wanted = _text(form, "drop_dir")
        if wanted != current:
            root = context.settings.drop_folders
            sources.set_drop_dir(session, actor, connection, wanted, root=root)


def source_view(connection: Connection) -> dict[str, Any]:
    """What the form shows of a connection's upstream and drop folder (never the secret)."""
    stored = (connection.settings or {}).get("upstream") or {}
    state = sources.pull_state(connection)
    return {
        "upstream": stored.get("base_url"),
        "version": stored.get("version") or "",
        "auth": "oauth2" if stored.get("token_url") else ("oauth1" if stored else "oauth2"),
        "token_url": stored.get("token_url") or "",
        "client_id": stored.get("client_id") or "",
        "has_secret": bool(stored.get("client_secret_sealed")),
        "every": stored.get("every_minutes") or "",
        "full_every": stored.get("full_every_hours") or "",
        "drop_dir": (connection.settings or {}).get("drop_dir") or "",
        "high_water": state.high_water,
        "last_full_at": state.last_full_at.isoformat(timespec="seconds")
        if state.last_full_at
        else None,
    }


def _text(form: dict[str, Any], name: str) -> str | None:
    return str(form.get(name) or "").strip() or None


def _number(form: dict[str, Any], name: str, label: str) -> int | None:
    text = _text(form, name)
    if text is None:
        return None
    if not text.isdigit():
        raise InvalidValue(f"{label} must be a whole number, not {text!r}.", field=name)
    return int(text)
