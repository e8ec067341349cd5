"""Property tests (Hypothesis) of OneRoster filters (1.1 §3.4.2, 1.2 §3.3.4 of the REST binding).

Any text sent as ``filter`` is parsed into predicates or refused with the protocol's own error
(400 ``invalid_filter_field``), never another exception; a filter written from predicates
(quotes doubled, ``AND`` inside ``OR``) parses back to the same predicates; and over HTTP any
filter gets a page (200) or a status report (400), never a 500. ``make soak`` runs many more
examples with a fresh seed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oneroster.errors import INVALID_FILTER_FIELD, StatusError
from oneroster.query import OPERATORS, Predicate, parse_filter
from tests.generated import fuzz_settings
from tests.oneroster.conftest import V1P1, V1P2, bearer
from tests.wire import imsx_failure

# Fields of users and classes (and dotted ones), as consumers filter on them.
FIELDS = st.one_of(
    st.sampled_from(
        [
            "sourcedId",
            "status",
            "dateLastModified",
            "givenName",
            "familyName",
            "role",
            "roles.role",
            "email",
            "username",
            "grades",
            "title",
            "school.sourcedId",
            "enabledUser",
        ]
    ),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,15}", fullmatch=True),
)
PREDICATES = st.builds(
    Predicate,
    FIELDS,
    st.sampled_from(OPERATORS),
    st.text(max_size=15).filter(lambda v: "\0" not in v),
)
FILTERS = st.lists(st.lists(PREDICATES, min_size=1, max_size=4), min_size=1, max_size=4)


def _written(groups: list[list[Predicate]]) -> str:
    """A filter as a consumer writes it: ``AND`` within a group, ``OR`` between groups."""
    quoted = "{0.field}{0.op}'{1}'"
    return " OR ".join(
        " AND ".join(quoted.format(p, p.value.replace("'", "''")) for p in group)
        for group in groups
    )


def _mangled(text: str, at: int, insert: str) -> str:
    return text[:at] + insert + text[at + len(insert) :]


MANGLED = st.builds(_mangled, FILTERS.map(_written), st.integers(0, 80), st.text(max_size=4))


@given(text=st.one_of(st.text(max_size=80), MANGLED))
@fuzz_settings(300)
def test_any_text_parses_or_is_refused_with_invalid_filter_field(text):
    try:
        groups = parse_filter(text)
    except StatusError as error:
        assert (error.status, error.code_minor) == (400, INVALID_FILTER_FIELD)
    else:
        assert groups and all(groups), text


@given(groups=FILTERS)
@fuzz_settings(300)
def test_written_predicates_parse_back_to_the_same_predicates(groups):
    assert parse_filter(_written(groups)) == groups


def test_a_filter_of_any_shape_gets_a_page_or_a_status_report(api, reader):
    headers = bearer(reader())

    @given(text=st.one_of(FILTERS.map(_written), MANGLED, st.text(max_size=40)))
    @fuzz_settings(40)
    def read(text):
        for prefix in (V1P1, V1P2):
            response = api.get(f"{prefix}/users", params={"filter": text}, headers=headers)
            if response.status_code != 200:
                imsx_failure(response, 400, "invalid_filter_field")

    read()
