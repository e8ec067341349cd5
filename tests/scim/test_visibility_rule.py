"""Issue 16 item 1 (SCIM part), moved here by issue 15: who sees which record is decided once,
in ``server.domain.access``. ``scim/storage.py`` kept its own copy of the rule (``_owned``, and
again in the search's WHERE); it now asks ``access.visible_records`` for both."""

from __future__ import annotations

import re
from pathlib import Path

from server.db.session import Database
from tests.scim.conftest import District, add_connection
from tests.scim.helpers import IdP

SCIM = Path(__file__).parents[2] / "scim"


def test_the_scim_package_never_compares_owners_itself() -> None:
    decided_here = [
        f"{path.name}:{number}"
        for path in sorted(SCIM.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"connection_id\s*[!=]=|\.tenant_id\s*[!=]=\s*(self\.)?actor", line)
    ]
    assert decided_here == []


def test_a_connection_neither_reads_nor_finds_another_connections_records(
    idp: IdP, database: Database, district: District
) -> None:
    pupil = idp.create_user("pupil@school.example", externalId="sis-9")
    club = idp.create_group("Chess club", [pupil["id"]])
    other = IdP(idp.client, add_connection(database, district, "Other IdP"))
    assert other.get(f"/Users/{pupil['id']}").status_code == 404
    assert other.get(f"/Groups/{club['id']}").status_code == 404
    found = other.get("/Users", params={"filter": 'externalId eq "sis-9"'}).json()
    assert found["totalResults"] == 0
    assert idp.delete(f"/Groups/{club['id']}").status_code == 204
    assert idp.get(f"/Groups/{club['id']}").status_code == 404
