"""A student is put only in classes of their own school (issue 14, item 5): the class list
follows the chosen school, and the domain refuses the rest."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from server.db import User
from tests.web.conftest import csrf_of, sign_in


def test_a_class_of_another_school_is_refused_and_nothing_is_created(app, district, database):
    client = sign_in(app, "skinner", district.admin_password)
    form_page = client.get("/admin/users/new").text
    other = re.search(r'<option value="([^"]+)"[^>]*>Other</option>', form_page).group(1)
    refused = client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf_of(form_page),
            "given_name": "Rod",
            "family_name": "Flanders",
            "school_id": other,
            "class_id": district.maths,
        },
    )
    assert refused.status_code == 409
    assert "Maths 4B is a class of Lincoln" in refused.text
    with database.session() as session:
        query = select(func.count()).select_from(User).where(User.family_name == "Flanders")
        assert session.scalar(query) == 0


def test_the_class_options_name_their_school(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    form_page = client.get("/admin/users/new").text
    lincoln = re.search(r'<option value="([^"]+)"[^>]*>Lincoln</option>', form_page).group(1)
    assert f'value="{district.maths}" data-school="{lincoln}"' in form_page
    assert 'data-school-select="#school_id"' in form_page
