"""One-time form tokens: a staff form changes something once, however often it is posted.

Every staff form carries a random ``form_token``. The first post claims it; the change is made
and answered with a redirect (POST/redirect/GET) whose location is stored with the token. A
repeated post of the same token (a reload of the result, a double click, a resubmitted back
page) is answered with that stored location and changes nothing (issue 14, item 2).

A secret the result must show (a new temporary password, a connection's bearer token) is
kept sealed beside the token for :data:`SECRET_MINUTES`, only for the staff member who
posted, so that the result page can be reloaded; afterwards it is erased.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import FormSubmission, utcnow
from server.domain.secrets import SecretBox
from server.errors import InvalidValue

SECRET_MINUTES = 10
KEEP_DAYS = 2
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def claim(session: Session, staff_id: str, token: str) -> FormSubmission | None:
    """Claim ``token`` for this post: None when it is the first post of the form, else the
    earlier submission (whose ``result_location`` may still be unset while it runs).

    :raises InvalidValue: the token is not one this server hands out.
    """
    if not TOKEN.fullmatch(token):
        raise InvalidValue("The form token is malformed: reload the page and try again.")
    _forget_old(session)
    earlier = session.get(FormSubmission, token)
    if earlier is not None:
        return earlier if earlier.staff_id == staff_id else _foreign(token)
    try:
        with session.begin_nested():
            session.add(FormSubmission(token=token, staff_id=staff_id))
    except IntegrityError:
        # A concurrent post (a double click) claimed it first.
        return session.get(FormSubmission, token)
    return None


def _foreign(token: str) -> FormSubmission:
    raise InvalidValue("This form belongs to another sign-in: reload the page and try again.")


def record_result(
    session: Session, token: str, location: str, secret: str | None, box: SecretBox
) -> None:
    """Store where the first post's result is shown, and the secret it shows (sealed)."""
    submission = session.get(FormSubmission, token)
    if submission is None:
        return
    submission.result_location = location
    submission.sealed_secret = box.seal(secret, bound_to=token) if secret else None


def release(session: Session, token: str) -> None:
    """Forget a claim whose post changed nothing (refused, or only showed a page)."""
    session.execute(delete(FormSubmission).where(FormSubmission.token == token))


def kept_secret(session: Session, staff_id: str, token: str, box: SecretBox) -> str | None:
    """The secret a recent result of this staff member shows, or None."""
    submission = session.get(FormSubmission, token) if TOKEN.fullmatch(token) else None
    if submission is None or submission.staff_id != staff_id or not submission.sealed_secret:
        return None
    if submission.created_at < utcnow() - timedelta(minutes=SECRET_MINUTES):
        return None
    return box.open(submission.sealed_secret, bound_to=token)


def _forget_old(session: Session) -> None:
    now = utcnow()
    session.execute(
        update(FormSubmission)
        .where(FormSubmission.created_at < now - timedelta(minutes=SECRET_MINUTES))
        .where(FormSubmission.sealed_secret.is_not(None))
        .values(sealed_secret=None)
    )
    session.execute(
        delete(FormSubmission).where(FormSubmission.created_at < now - timedelta(days=KEEP_DAYS))
    )
