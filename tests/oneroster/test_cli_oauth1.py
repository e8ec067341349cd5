"""A district admin gives a 1.1 consumer (ClassLink, say) an OAuth 1.0a key and secret."""

from __future__ import annotations

import json

from server.cli.main import main
from server.domain import oauth, oauth1
from server.domain.actors import system_actor
from server.domain.tenants import get_tenant


def test_oneroster_oauth1_prints_a_consumer_secret_once(
    monkeypatch, tmp_path, database, database_url, capsys
):
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ROLLCALL_SECRET_KEY", raising=False)
    assert main(["connection", "list"]) == 0
    with database.session() as session:
        tenant = get_tenant(session)
        client = oauth.create_client(
            session, system_actor(tenant.id), "ClassLink", kind="api", scopes=[]
        ).client
        client_pk, client_id = client.id, client.client_id
    capsys.readouterr()
    assert main(["oneroster-oauth1", "ClassLink", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["consumer_key"] == client_id
    box = oauth1.consumer_box((tmp_path / "secret_key").read_text().strip())
    with database.session() as session:
        row = oauth.find_client(session, client_id)
        assert row is not None and row.id == client_pk
        assert oauth1.consumer_secret(session, row, box) == printed["consumer_secret"]
    assert main(["oneroster-oauth1", "Nobody"]) == 1
