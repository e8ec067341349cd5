"""OAuth clients and access tokens in the domain: digests only, expiry, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from server.db import OAuthClientKind
from server.districts import school, student
from server.domain import oauth, users
from server.errors import InvalidValue, NotAllowed


def test_api_client_token_grants_its_scopes_and_schools(session, system):
    org = school(session, system)
    created = oauth.create_client(
        session,
        system,
        "Reading App",
        kind=OAuthClientKind.API,
        scopes=["roster.readonly"],
        school_sourced_ids=[org.sourced_id],
    )
    assert oauth.check_client_secret(created.client, created.secret)
    assert not oauth.check_client_secret(created.client, "wrong")
    oauth.store_token(session, created.client, "access-123", "roster.readonly")
    grant = oauth.authenticate_access_token(session, "access-123")
    assert grant.scopes == {"roster.readonly"} and grant.school_ids == (org.id,)
    stored = " ".join(str(r) for r in session.execute(text("SELECT * FROM oauth_tokens")).all())
    assert "access-123" not in stored and created.secret not in stored


def test_expired_tokens_and_deactivated_users_are_refused(session, system):
    pupil = student(session, system, school(session, system), "Ivy", "Cole")
    client = oauth.create_client(session, system, "Quiz", redirect_uris=["https://q.example/cb"])
    oauth.store_token(session, client.client, "old", "openid", expires_in=timedelta(seconds=-1))
    oauth.store_token(session, client.client, "live", "openid", user_id=pupil.id)
    assert oauth.authenticate_access_token(session, "old") is None
    assert oauth.authenticate_access_token(session, "live").user_id == pupil.id
    users.deactivate_user(session, system, pupil)
    assert oauth.authenticate_access_token(session, "live") is None


def test_client_rules(session, system):
    with pytest.raises(InvalidValue, match="redirect URI"):
        oauth.create_client(session, system, "No Redirect")
    from server.domain.actors import Actor

    teacher = Actor(tenant_id=system.tenant_id, kind="staff", name="t", role="teacher")
    with pytest.raises(NotAllowed):
        oauth.create_client(session, teacher, "Mine", redirect_uris=["https://x.example/cb"])


def test_client_ids_can_be_passed_on_a_command_line(session, system):
    """A client id is pasted into ``--client-id VALUE``: one starting with ``-`` is read as an
    option by the CLI's parser (about 1 in 32 of the ids ``token_urlsafe`` gave; seen as a
    flaky ``rollcall connection add … --client-id`` test)."""
    for number in range(300):
        client = oauth.create_client(
            session, system, f"App {number}", kind=OAuthClientKind.API, scopes=["roster.readonly"]
        ).client
        assert client.client_id[0].isalnum(), client.client_id
