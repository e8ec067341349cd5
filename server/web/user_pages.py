"""The users list and one user's page: search, edit, deactivate, invite, badge, reset, reveal.
Every action is authorised by the domain, not only hidden in the page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from server.db import User
from server.domain import (
    audit,
    badges,
    completeness,
    connections,
    credentials,
    invitations,
    outbox,
    password_emails,
    roster_views,
    search,
    users,
)
from server.domain.actors import Actor
from server.domain.search import UserQuery
from server.errors import DomainError, NotAllowed
from server.web.presenters import (
    user_view,
)
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page

PAGE_SIZE = 50
EDITABLE = (
    "given_name",
    "family_name",
    "preferred_given_name",
    "email",
    "identifier",
    "birth_date",
    "gender",
    "username",
)


UserAction = Callable[[Session, Actor, User], str]


@staff_page
async def user_list(staff: StaffRequest) -> Response:
    params = staff.request.query_params
    number = max(1, int(params.get("page", "1") or 1)) if params.get("page", "1").isdigit() else 1
    query = query_from(params, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    print_ids, invited_ids = _kept_ids(await staff.kept_secret())

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        found = search.search_users(session, actor, query)
        ids = [u.id for u in found.items]
        titles = roster_views.class_titles_of(session, ids)
        incomplete = completeness.incomplete_ids(session, ids)
        return {
            "password_emails": _email_statuses(session, actor, print_ids, outbox.NEW_PASSWORD),
            "activation_emails": _email_statuses(
                session, actor, invited_ids, invitations.ACTIVATION
            ),
            "rows": [
                {**user_view(u, titles[u.id]), "incomplete": u.id in incomplete}
                for u in found.items
            ],
            "total": found.total,
            "has_next": found.has_next,
            "schools": [
                (o.id, o.name) for o in roster_views.list_schools(session, actor.tenant_id)
            ],
            "classes": [
                (c.id, c.title, c.school_id) for c in roster_views.list_classes(session, actor)
            ],
        }

    try:
        data = await staff.work(load)
    except DomainError as error:
        data = {"rows": [], "total": 0, "has_next": False, "schools": [], "classes": []}
        return page(
            staff.request,
            "users.html",
            status_code=400,
            nav="users",
            error=error.message,
            params=params,
            page_number=1,
            **data,
        )
    base = {k: v for k, v in params.items() if k not in ("page", "done", "result")}
    return page(
        staff.request,
        "users.html",
        print_ids=print_ids,
        nav="users",
        params=params,
        page_number=number,
        next_url=f"?{urlencode({**base, 'page': number + 1})}",
        prev_url=f"?{urlencode({**base, 'page': number - 1})}",
        flash=params.get("done"),
        **data,
    )


def _email_statuses(
    session: Session, actor: Actor, user_ids: list[str], template: str
) -> list[dict[str, Any]]:
    """Per student of a bulk action that emailed them (a reset's new password, an activation
    link): to whom, and sent, failed or waiting (issue 14, items 6 and 14)."""
    sent = invitations.latest_deliveries(session, actor, user_ids, template)
    return [
        {
            "name": users.get_user(session, actor, uid).display_name,
            "to": d.to,
            "status": d.status,
            "error": d.error,
        }
        for uid in user_ids
        if (d := sent.get(uid)) is not None
    ]


def _kept_ids(kept: str | None) -> tuple[list[str], list[str]]:
    """The students a bulk action just handled, kept with its result: (reset, emailed an
    activation link). A reset keeps a list, an activation send ``{"activation": [...]}``."""
    try:
        ids = json.loads(kept) if kept else []
    except ValueError:
        return [], []
    if isinstance(ids, dict):
        return [], [str(i) for i in ids.get("activation") or []]
    return ([str(i) for i in ids] if isinstance(ids, list) else []), []


def query_from(params: Any, *, limit: int, offset: int = 0) -> UserQuery:
    """The user search a filter form (or the same fields carried in a bulk form) asks for."""
    return UserQuery(
        text=str(params.get("q") or ""),
        role=params.get("role") or None,
        school_id=params.get("school") or None,
        class_id=params.get("class") or None,
        grade=params.get("grade") or None,
        include_inactive=params.get("inactive") == "1",
        limit=limit,
        offset=offset,
    )


@staff_page
async def user_detail(staff: StaffRequest) -> Response:
    revealed = await staff.kept_secret()
    return await _render_user(
        staff, staff.request.path_params["user_id"], revealed=revealed, opened=True
    )


async def _render_user(
    staff: StaffRequest, user_id: str, status: int = 200, *, opened: bool = False, **extra: Any
) -> Response:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        user = users.get_user(session, actor, user_id)
        titles = roster_views.class_titles_of(session, [user.id])
        if opened:
            audit.record_read(session, actor, "user_page", users=[user], classes=titles[user.id])
        badge = badges.live_badge(session, user)
        incomplete = bool(completeness.incomplete_ids(session, [user.id]))
        sent = invitations.deliveries(session, actor, user)
        view = user_view(user, titles[user.id])
        schools = [role.org_id for role in user.roles]
        sso_here = (
            []
            if view["managed_by"]
            else connections.sso_providers_at(session, user.tenant_id, schools)
        )
        return {
            "sso_here": sso_here,
            "emails": [
                {
                    "what": d.what,
                    "to": d.to,
                    "status": d.status,
                    "at": f"{d.at:%Y-%m-%d %H:%M}",
                    "error": d.error,
                }
                for d in sent
            ],
            "user": {**user_view(user, titles[user.id]), "incomplete": incomplete},
            "badge": {"expires": f"{badge.expires_at:%Y-%m-%d}", "pin": bool(badge.pin_hash)}
            if badge
            else None,
        }

    data = await staff.work(load)
    flash = extra.pop("flash", None) or staff.request.query_params.get("done")
    return page(
        staff.request, "user.html", status_code=status, nav="users", flash=flash, **data, **extra
    )


async def _act_on_user(staff: StaffRequest, action: UserAction) -> Response:
    """Run ``action`` on the user of the path; back to their page with its message, or the
    page again with the domain's reason."""
    user_id = staff.request.path_params["user_id"]

    def run(session: Session, actor: Actor) -> str:
        return action(session, actor, users.get_user(session, actor, user_id))

    try:
        message = await staff.work(run)
    except DomainError as error:
        return await _render_user(staff, user_id, status=error.status, error=error.message)
    return back_to_user(user_id, message)


@staff_page
async def user_update(staff: StaffRequest) -> Response:
    form = await staff.form()
    fields = {name: str(form.get(name, "")).strip() for name in EDITABLE if name in form}
    if not fields.get("username"):
        fields.pop("username", None)
    override = form.get("override") == "1"
    expected = int(form.get("version") or 0) or None

    def save(session: Session, actor: Actor, user: User) -> str:
        changes = users.update_user(
            session, actor, user, fields, override=override, expected_version=expected
        )
        if not changes:
            return "Nothing changed."
        suffix = " The change was made by override: the next sync may overwrite it."
        return "Saved." + (suffix if override else "")

    return await _act_on_user(staff, save)


async def _confirm_one(staff: StaffRequest, override: bool) -> Response:
    """Ask before deactivating one account, by name (issue 14, item 10)."""
    user_id = staff.request.path_params["user_id"]
    name = await staff.work(
        lambda session, actor: users.get_user(session, actor, user_id).display_name
    )
    return page(
        staff.request,
        "confirm.html",
        nav="users",
        question=f"Deactivate {name}'s account?",
        names=[],
        consequence="It can no longer sign in. Its data stays and you can reactivate it.",
        action=f"/admin/users/{user_id}/status",
        carried=[("active", "0")] + ([("override", "1")] if override else []),
        confirm_label="Deactivate 1 account",
        back=f"/admin/users/{user_id}",
    )


@staff_page
async def user_status(staff: StaffRequest) -> Response:
    form = await staff.form()
    active, override = form.get("active") == "1", form.get("override") == "1"
    if not active and form.get("confirmed") != "1":
        return await _confirm_one(staff, override)

    def save(session: Session, actor: Actor, user: User) -> str:
        change = users.reactivate_user if active else users.deactivate_user
        change(session, actor, user, override=override)
        return "The account is active." if active else "The account is inactive."

    return await _act_on_user(staff, save)


@staff_page
async def user_invite(staff: StaffRequest) -> Response:
    issuer = staff.context.settings.issuer
    mail_ready = bool(staff.context.settings.smtp_url)
    note = str((await staff.form()).get("email_message") or "")

    def invite(session: Session, actor: Actor, user: User) -> str:
        [outcome] = invitations.send_activation_emails(
            session, actor, [user], issuer=issuer, mail_configured=mail_ready, message=note
        )
        if outcome.skipped:
            raise NotAllowed(outcome.skipped)
        return f"Activation email queued for {outcome.sent_to}."

    return await _act_on_user(staff, invite)


@staff_page
async def user_badge(staff: StaffRequest) -> Response:
    """Issue (or regenerate) a student's QR badge, or void it."""
    form = await staff.form()
    box = badges.badge_box(staff.context.settings.secret_keys)
    pin = str(form.get("pin") or "").strip() or None

    def change(session: Session, actor: Actor, user: User) -> str:
        if form.get("do") == "void":
            voided = badges.void_badge(session, actor, user)
            return "Badge voided." if voided else "The student had no live badge."
        issued = badges.issue_badge(session, actor, user, box=box, pin=pin)
        assert issued.badge is not None  # issue_badge skips no one it is given alone
        return f"New badge issued, valid until {issued.badge.expires_at:%Y-%m-%d}; print it below."

    return await _act_on_user(staff, change)


@staff_page
async def user_reset(staff: StaffRequest) -> Response:
    user_id = staff.request.path_params["user_id"]
    form = await staff.form()
    temporary = form.get("kind", "temporary") != "permanent"
    typed = str(form.get("password") or "") or None
    by_email = temporary and form.get("email_password") == "1"

    def reset(session: Session, actor: Actor) -> tuple[str, str]:
        user = users.get_user(session, actor, user_id)
        if by_email:
            password_emails.ensure_mail_configured(bool(staff.context.settings.smtp_url))
        password = credentials.reset_password(
            session, actor, user, box=staff.context.box, temporary=temporary, password=typed
        )
        if not by_email:
            return password, ""
        [sent] = password_emails.email_new_passwords(
            session, actor, [user], issuer=staff.context.settings.issuer
        )
        note = f" Emailed to {sent.sent_to}." if sent.sent_to else f" Not emailed: {sent.skipped}."
        return password, note

    try:
        password, note = await staff.work(reset)
    except DomainError as error:
        return await _render_user(staff, user_id, status=error.status, error=error.message)
    staff.keep(password)
    kind = "temporary" if temporary else "permanent"
    return back_to_user(user_id, f"New {kind} password set.{note}")


@staff_page
async def user_reveal(staff: StaffRequest) -> Response:
    user_id = staff.request.path_params["user_id"]

    def reveal(session: Session, actor: Actor) -> str:
        user = users.get_user(session, actor, user_id)
        return credentials.reveal_temporary_password(session, actor, user, box=staff.context.box)

    try:
        password = await staff.work(reveal)
    except DomainError as error:
        return await _render_user(staff, user_id, status=error.status, error=error.message)
    return await _render_user(staff, user_id, revealed=password)


def back_to_user(user_id: str, message: str) -> Response:
    return RedirectResponse(
        f"/admin/users/{user_id}?" + urlencode({"done": message}), status_code=303
    )
