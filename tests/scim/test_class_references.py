"""A class pushed over SCIM may name a course or term no SIS file brought (issue 10, defect 5).

A district that only uses Entra has no courses or terms; its classes' course and terms are made
for it, owned by the pushing connection, instead of refusing the class.
"""

from __future__ import annotations

from sqlalchemy import select

from server.db import AcademicSession, Connection, Course
from tests.scim.helpers import EDU_GROUP


def test_a_pushed_class_naming_an_unknown_course_and_term_creates_them(idp, database, district):
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", EDU_GROUP],
        "displayName": "Algebra 7A",
        EDU_GROUP: {"school": "sch-1", "course": "alg-1", "terms": ["fall-26"]},
    }
    created = idp.post("/Groups", body)
    assert created.status_code == 201, created.text
    assert created.json()[EDU_GROUP]["course"] == "alg-1"
    assert created.json()[EDU_GROUP]["terms"] == ["fall-26"]
    again = idp.post("/Groups", {**body, "displayName": "Algebra 7B"})
    assert again.status_code == 201  # the second class finds the course and term made for the first
    with database.session() as session:
        course = session.scalars(select(Course).where(Course.sourced_id == "alg-1")).one()
        term = session.scalars(
            select(AcademicSession).where(AcademicSession.sourced_id == "fall-26")
        ).one()
        owner = session.get(Connection, course.connection_id)
        assert (course.title, owner.name) == ("alg-1", "Entra ID")
        assert (term.title, term.type, term.connection_id) == ("fall-26", "term", owner.id)
