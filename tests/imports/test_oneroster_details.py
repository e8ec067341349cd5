"""OneRoster details: 1.2 demographics and user profiles, extension columns, adoption."""

from __future__ import annotations

from oneroster.csv_files import HEADERS
from server.domain import users
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from tests.imports.packages import district, package


def test_a_12_package_with_demographics_profiles_and_metadata_reimports_unchanged(
    tenancy, tmp_path
):
    files = district("1.2")
    files["demographics.csv"] = [
        {
            "sourcedId": "u1",
            "birthDate": "2017-05-04",
            "sex": "female",
            "white": "true",
            "countryOfBirthCode": "GB",
        }
    ]
    files["userProfiles.csv"] = [
        {
            "sourcedId": "p1",
            "userSourcedId": "u1",
            "profileType": "reading",
            "vendorId": "acme",
            "credentialType": "password",
            "username": "u1-acme",
            "password": "not kept",
        }
    ]
    header = [*HEADERS["1.2"]["users.csv"], "resourceSourcedIds", "metadata.house"]
    for row in files["users.csv"]:
        row["metadata.house"] = "Red"
    path = package(tmp_path / "p.zip", "1.2", files, headers={"users.csv": header})
    report = tenancy.run(path)
    assert report.status == "applied", report.as_dict()
    assert any("resourceSourcedIds" in w["message"] for w in report.warnings)
    user = tenancy.user("u1")
    assert user.birth_date.isoformat() == "2017-05-04" and user.gender == "female"
    assert user.extra["demographics"] == {"white": True, "countryOfBirthCode": "GB"}
    assert user.extra["userProfiles"] == {
        "p1": {
            "profileType": "reading",
            "vendorId": "acme",
            "credentialType": "password",
            "username": "u1-acme",
        }
    }
    assert user.extra["metadata.house"] == "Red"
    assert "not kept" not in str(user.extra)
    again = tenancy.run(path)
    assert set(again.outcomes) == {"unchanged"}, again.as_dict()


def test_a_connection_set_to_adopt_by_username_takes_over_matching_accounts(tenancy, tmp_path):
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        create_connection(session, actor, "Adopter", "oneroster", adopt_by="username")
        users.create_user(
            session, actor, {"given_name": "Old", "family_name": "Name", "username": "stua.denta"}
        )
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", district()), connection="Adopter")
    assert report.status == "applied", report.as_dict()
    adopted = tenancy.user("u1")
    assert adopted.connection.name == "Adopter" and adopted.given_name == "Stua"
    assert tenancy.count() == 4


def test_new_users_with_enabled_user_false_are_created_inactive(tenancy, tmp_path):
    files = district()
    files["users.csv"][1]["enabledUser"] = "false"
    tenancy.run(package(tmp_path / "p.zip", "1.1", files))
    assert tenancy.user("u1").status == "inactive"
    files["users.csv"][1]["enabledUser"] = "true"
    report = tenancy.run(package(tmp_path / "q.zip", "1.1", files))
    assert [r["code"] for r in report.rows() if r["key"] == "u1"] == ["W202"]


def test_an_adopting_connection_cannot_take_over_sso_accounts_or_set_their_passwords(
    tenancy, tmp_path
):
    # Issue 11 defect 2: a CSV with a password column, sent by a connection set to adopt by
    # username, took over the Clever accounts and gave them passwords.
    tenancy.run(package(tmp_path / "clever.zip", "1.1", district()), connection="Clever")
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        create_connection(session, actor, "Adopter", "oneroster", adopt_by="username")
    files = district()
    for row in files["users.csv"]:
        row |= {"sourcedId": "x-" + row["sourcedId"], "password": "Correct-Horse-Battery-77"}
    for row in files["enrollments.csv"]:
        row["userSourcedId"] = "x-" + row["userSourcedId"]
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files), connection="Adopter")
    codes = {r["key"]: (r["code"], r["message"]) for r in report.rows() if r["key"] == "x-u1"}
    assert codes["x-u1"][0] == "R107" and "Clever" in codes["x-u1"][1], report.as_dict()
    kid = tenancy.user("u1")
    assert kid.connection.name == "Clever"
    assert kid.credential.state == "sso" and kid.credential.password_hash is None
