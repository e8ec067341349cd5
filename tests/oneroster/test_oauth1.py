"""OneRoster 1.1 consumers that sign each request with OAuth 1.0a instead of using a token."""

from __future__ import annotations

import hashlib
import hmac
from base64 import b64encode
from dataclasses import dataclass, replace
from urllib.parse import quote

import pytest
from authlib.oauth1.rfc5849.client_auth import ClientAuth
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from starlette.testclient import TestClient

from server.app import create_app
from server.domain import oauth, oauth1
from server.domain.actors import system_actor
from tests.conftest import TEST_SECRET
from tests.oneroster.conftest import V1P1, V1P2, scope
from tests.wire import imsx_failure


def _sign_hmac_sha256(client, request):
    base = generate_signature_base_string(request)
    key = f"{quote(client.client_secret, safe='~')}&"
    return b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()).decode()


ClientAuth.register_signature_method("HMAC-SHA256", _sign_hmac_sha256)


@dataclass(frozen=True)
class Consumer:
    key: str
    secret: str


@pytest.fixture
def consumer(database, district) -> Consumer:
    with database.session() as session:
        actor = system_actor(district.tenant_id)
        new = oauth.create_client(
            session,
            actor,
            "ClassLink",
            kind="api",
            scopes=[scope("v1p1", "roster.readonly")],
            school_sourced_ids=["south"],
        )
        secret = oauth1.issue_consumer_secret(
            session, actor, new.client, oauth1.consumer_box(TEST_SECRET)
        )
        return Consumer(new.client.client_id, secret)


def _signed(consumer: Consumer, url: str, method="HMAC-SHA256", secret=None, **kwargs):
    auth = ClientAuth(consumer.key, secret or consumer.secret, signature_method=method, **kwargs)
    uri, headers, _ = auth.sign("GET", url, {}, b"")
    return uri, headers


@pytest.mark.parametrize("method", ["HMAC-SHA256", "HMAC-SHA1"])
def test_a_signed_v1p1_request_reads_the_roster(api, consumer, method):
    url = f"https://testserver{V1P1}/users?limit=3&filter=role%3D%27student%27&sort=familyName"
    uri, headers = _signed(consumer, url, method)
    response = api.get(uri, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == "11"
    assert all(u["sourcedId"].startswith("south") for u in response.json()["users"])
    assert "oauth_" not in response.headers["Link"]


def test_signature_in_the_query_string_is_accepted(api, consumer):
    uri, headers = _signed(
        consumer, f"https://testserver{V1P1}/classes?limit=1", signature_type="QUERY"
    )
    assert "oauth_signature=" in uri
    response = api.get(uri, headers=headers)
    assert response.status_code == 200, response.text
    assert "oauth_" not in response.headers["Link"]


def test_a_replayed_request_is_refused(api, consumer):
    uri, headers = _signed(consumer, f"https://testserver{V1P1}/orgs")
    assert api.get(uri, headers=headers).status_code == 200
    replay = api.get(uri, headers=headers)
    imsx_failure(replay, 401, "unauthorisedrequest")
    assert "replay" in replay.json()["imsx_description"]


def test_a_tampered_query_parameter_breaks_the_signature(api, consumer):
    uri, headers = _signed(consumer, f"https://testserver{V1P1}/users?limit=3")
    response = api.get(uri.replace("limit=3", "limit=300"), headers=headers)
    imsx_failure(response, 401, "unauthorisedrequest")
    assert api.get(uri, headers=headers).status_code == 200


def test_a_wrong_secret_or_stale_timestamp_is_refused(api, consumer, monkeypatch):
    uri, headers = _signed(consumer, f"https://testserver{V1P1}/users", secret="guess")
    imsx_failure(api.get(uri, headers=headers), 401, "unauthorisedrequest")
    monkeypatch.setattr(
        "authlib.oauth1.rfc5849.client_auth.generate_timestamp", lambda: "1000000000"
    )
    uri, headers = _signed(consumer, f"https://testserver{V1P1}/users")
    stale = api.get(uri, headers=headers)
    imsx_failure(stale, 401, "unauthorisedrequest")
    assert "clock" in stale.json()["imsx_description"]


def test_v1p2_does_not_accept_oauth1(api, consumer):
    uri, headers = _signed(consumer, f"https://testserver{V1P2}/users")
    imsx_failure(api.get(uri, headers=headers), 401, "unauthorisedrequest")


def test_a_client_without_a_consumer_secret_cannot_sign(api, database, district):
    with database.session() as session:
        new = oauth.create_client(
            session,
            system_actor(district.tenant_id),
            "Token only",
            kind="api",
            scopes=[scope("v1p1", "roster.readonly")],
        )
        key, secret = new.client.client_id, new.secret
    uri, headers = _signed(Consumer(key, secret), f"https://testserver{V1P1}/users")
    imsx_failure(api.get(uri, headers=headers), 401, "unauthorisedrequest")


def test_a_request_signed_for_the_public_url_passes_behind_a_tls_proxy(
    settings, database, consumer
):
    """The proxy forwards plain http to us; the consumer signed the public https URL."""
    public = replace(settings, issuer="https://roster.example")
    uri, headers = _signed(consumer, f"https://roster.example{V1P1}/orgs?limit=2")
    forwarded = uri.replace("https://roster.example", "http://testserver")
    with TestClient(create_app(public, database=database)) as proxied:
        assert proxied.get(forwarded, headers=headers).status_code == 200
    with TestClient(create_app(settings, database=database)) as elsewhere:
        uri, headers = _signed(consumer, f"https://roster.example{V1P1}/orgs?limit=2")
        forwarded = uri.replace("https://roster.example", "http://testserver")
        refused = elsewhere.get(forwarded, headers=headers)
        assert refused.status_code == 401
        assert "signature" in refused.json()["imsx_description"]
