"""Every filter example of RFC 7644 §3.4.2.2 ("Filter Examples"), run against seeded users.

Source: RFC 7644 §3.4.2.2, the example list that follows the filter grammar (17 filters; the
RFC wraps two of them over two lines, joined here with one space). The users below are written
so that every example separates them: each expected set is worked out by hand from the RFC's
rules (``caseExact`` false for ``userName`` and ``emails.value``, RFC 7643 §4.1; a filter on
a multi-valued complex attribute without a sub-attribute compares its ``value``, RFC 7644
§3.4.2.2 "... the filter ... is applied to the 'value' sub-attribute"; ``ne`` holds for a
missing attribute, as for every unassigned attribute in scim2-models' reference ``match``).
Each filter is sent as a GET query and as a POST ``/.search`` body; both must answer the same.
Deviations: none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.scim.conftest import LiveScim

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

PEOPLE: dict[str, dict[str, Any]] = {
    "bjensen": {
        "schemas": [USER, ENTERPRISE],
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "title": "Tour Guide",
        "userType": "Employee",
        "emails": [{"type": "work", "value": "bjensen@example.com"}],
        ENTERPRISE: {"employeeNumber": "701984"},
    },
    "Jomalley": {
        "name": {"familyName": "O'Malley"},
        "userType": "Intern",
        "emails": [{"type": "home", "value": "jo@example.org"}],
    },
    "jsmith": {
        "title": "Manager",
        "userType": "Employee",
        "emails": [{"type": "work", "value": "js@example.org"}],
        "ims": [{"type": "xmpp", "value": "js@foo.com"}],
    },
    "ajones": {
        "userType": "Contractor",
        "emails": [{"type": "home", "value": "a@example.com"}],
        "ims": [{"type": "xmpp", "value": "a@foo.com"}],
    },
    "guest": {"emails": [{"value": "g@example.net"}]},
}
EVERYONE = set(PEOPLE)

EXAMPLES: list[tuple[str, set[str]]] = [
    ('userName eq "bjensen"', {"bjensen"}),
    ('name.familyName co "O\'Malley"', {"Jomalley"}),
    ('userName sw "J"', {"Jomalley", "jsmith"}),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', {"Jomalley", "jsmith"}),
    ("title pr", {"bjensen", "jsmith"}),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', EVERYONE),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', EVERYONE),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', set()),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', set()),
    ('title pr and userType eq "Employee"', {"bjensen", "jsmith"}),
    ('title pr or userType eq "Intern"', {"bjensen", "Jomalley", "jsmith"}),
    (f'schemas eq "{ENTERPRISE}"', {"bjensen"}),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        {"bjensen", "jsmith"},
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        {"guest"},
    ),
    ('userType eq "Employee" and (emails.type eq "work")', {"bjensen", "jsmith"}),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', {"bjensen"}),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        {"bjensen", "jsmith", "ajones"},
    ),
]


@pytest.fixture(scope="module")
def scim(live_scim: LiveScim) -> Iterator[httpx.Client]:
    """A connection of its own, so that only these five users are searched."""
    headers = {"Authorization": f"Bearer {live_scim.tokens['filters']}"}
    with httpx.Client(base_url=live_scim.url, headers=headers, timeout=30) as client:
        for user_name, attributes in PEOPLE.items():
            body = {"schemas": [USER], "userName": user_name, **attributes}
            response = client.post("/Users", json=body)
            assert response.status_code == 201, response.text
        yield client


def user_names(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalResults"] == len(body["Resources"])
    return {resource["userName"] for resource in body["Resources"]}


def test_the_rfc_lists_seventeen_examples() -> None:
    assert len(EXAMPLES) == 17


@pytest.mark.parametrize(("scim_filter", "expected"), EXAMPLES, ids=[f for f, _ in EXAMPLES])
def test_each_rfc_filter_example_finds_exactly_its_users(
    scim: httpx.Client, scim_filter: str, expected: set[str]
) -> None:
    assert user_names(scim.get("/Users", params={"filter": scim_filter})) == expected
    searched = scim.post("/Users/.search", json={"schemas": [SEARCH], "filter": scim_filter})
    assert user_names(searched) == expected
