"""The admin UI pages: sign-in, users (search, add, manage, reset, bulk, print), connections,
audit log. Every action is authorised by the domain, not only hidden in the page."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.db import User
from server.domain import (
    account_requests,
    audit,
    badges,
    completeness,
    connections,
    credentials,
    duplicates,
    invitations,
    jobs,
    outbox,
    password_emails,
    roster,
    search,
    users,
)
from server.domain.activation import create_activation_link
from server.domain.actors import Actor
from server.domain.search import UserQuery
from server.domain.staff import StaffSignIn, sign_in_staff
from server.domain.tenants import get_tenant, list_tenants
from server.domain.users import RoleAssignment
from server.domain.vocabulary import ROLES, parse_date
from server.errors import DomainError, NotAllowed
from server.web import session as cookies
from server.web.address import address_warning
from server.web.pdf import credential_sheet
from server.web.presenters import (
    connection_defaults_view,
    connection_view,
    purge_view,
    user_view,
)
from server.web.qr import qr_data_uri
from server.web.render import page
from server.web.source_form import apply_source_form, source_view
from server.web.staffauth import StaffRequest, context_of, staff_page

PAGE_SIZE = 50
MAX_BULK = 2000
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


async def login_form(request: Request) -> Response:
    several = await _has_several_tenants(request)
    return page(
        request, "login.html", several_tenants=several, next=request.query_params.get("next")
    )


async def login(request: Request) -> Response:
    context = context_of(request)
    form = await request.form()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    tenant_name = str(form.get("tenant") or "") or None

    address = request.client.host if request.client else None

    def check() -> StaffSignIn:
        with context.database.session() as session:
            tenant = get_tenant(session, tenant_name)
            return sign_in_staff(
                session,
                tenant.id,
                username,
                password,
                address=address,
                secret_key=context.settings.secret_keys,
            )

    try:
        result = await run_in_threadpool(check)
    except DomainError:
        result = StaffSignIn("invalid")
    if result.status != "ok" or result.staff is None:
        message = (
            f"Too many failed sign-ins: wait {result.wait_seconds} seconds and try again."
            if result.status == "throttled"
            else "That username and password do not match an active staff account."
        )
        return page(
            request,
            "login.html",
            status_code=429 if result.status == "throttled" else 401,
            several_tenants=await _has_several_tenants(request),
            error=message,
            username=username,
            next=form.get("next"),
        )
    staff_id = result.staff.id
    target = str(form.get("next") or "/admin/users")
    if not target.startswith("/admin/") or target.startswith("//"):
        target = "/admin/users"
    response = RedirectResponse(target, status_code=303)
    cookies.set_cookie(
        response,
        cookies.new_session(staff_id),
        context.settings.secret_key,
        secure=context.settings.issuer.startswith("https"),
    )
    return response


@staff_page
async def logout(staff: StaffRequest) -> Response:
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(cookies.COOKIE_NAME, path="/admin")
    return response


async def home(request: Request) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


@staff_page
async def user_list(staff: StaffRequest) -> Response:
    params = staff.request.query_params
    number = max(1, int(params.get("page", "1") or 1)) if params.get("page", "1").isdigit() else 1
    query = _query_from(params, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    print_ids, invited_ids = _kept_ids(await staff.kept_secret())

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        found = search.search_users(session, actor, query)
        ids = [u.id for u in found.items]
        titles = roster.class_titles_of(session, ids)
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
            "schools": [(o.id, o.name) for o in roster.list_schools(session, actor.tenant_id)],
            "classes": [(c.id, c.title, c.school_id) for c in roster.list_classes(session, actor)],
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


def _query_from(params: Any, *, limit: int, offset: int = 0) -> UserQuery:
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
        titles = roster.class_titles_of(session, [user.id])
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

    try:
        data = await staff.work(load)
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
    flash = extra.pop("flash", None) or staff.request.query_params.get("done")
    return page(
        staff.request, "user.html", status_code=status, nav="users", flash=flash, **data, **extra
    )


UserAction = Callable[[Session, Actor, User], str]


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
    return _back_to_user(user_id, message)


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
    return _back_to_user(user_id, f"New {kind} password set.{note}")


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


@staff_page
async def new_student_form(staff: StaffRequest) -> Response:
    options = await staff.work(_school_and_class_options)
    return page(staff.request, "new_student.html", nav="new", values={}, **options)


@staff_page
async def new_student(staff: StaffRequest) -> Response:
    form = await staff.form()
    values = {k: str(v).strip() for k, v in form.items() if k != "csrf_token"}

    def create(session: Session, actor: Actor) -> dict[str, Any]:
        if actor.is_teacher:
            raise NotAllowed(
                "Teachers cannot create accounts: send an account request to a school admin."
            )
        birth = values.get("birth_date") or None
        if values.get("confirm_new") != "1":
            matches = search.find_reactivation_candidates(
                session,
                actor,
                values.get("given_name", ""),
                values.get("family_name", ""),
                parse_date(birth, "birth_date"),
            )
            if matches:
                return {"matches": [user_view(u) for u in matches]}
        if not values.get("school_id") and actor.school_ids:
            values["school_id"] = actor.school_ids[0]
        duplicates.refuse_duplicates(
            session,
            actor,
            values.get("given_name", ""),
            values.get("family_name", ""),
            birth_date=parse_date(birth, "birth_date"),
            class_id=values.get("class_id") or None,
            allow_duplicate=values.get("allow_duplicate") == "1",
        )
        fields: dict[str, Any] = {
            "given_name": values.get("given_name", ""),
            "family_name": values.get("family_name", ""),
            "birth_date": birth,
            "email": values.get("email") or None,
            "identifier": values.get("identifier") or None,
            "primary_role": "student",
            "grades": [values["grade"]] if values.get("grade") else [],
            "roles": [RoleAssignment(values["school_id"], "student")]
            if values.get("school_id")
            else [],
        }
        if values.get("username"):
            fields["username"] = values["username"]
        user = users.create_user(session, actor, fields)
        if values.get("class_id"):
            roster.enroll(
                session, actor, user, roster.get_class(session, actor, values["class_id"])
            )
        password = None
        if values.get("password"):
            credentials.set_password(
                session, actor, user, values["password"], temporary=True, box=staff.context.box
            )
        elif values.get("issue_password", "1") == "1":
            password = credentials.issue_temporary_password(
                session, actor, user, box=staff.context.box
            )
        return {"created": user.id, "password": password}

    try:
        if not values.get("given_name") or not values.get("family_name"):
            raise DomainError("First name and last name are required.", code="R101")
        result = await staff.work(create)
    except DomainError as error:
        options = await staff.work(_school_and_class_options)
        return page(
            staff.request,
            "new_student.html",
            status_code=error.status,
            nav="new",
            error=error.message,
            values=values,
            duplicates=getattr(error, "matches", None),
            **options,
        )
    if "matches" in result:
        options = await staff.work(_school_and_class_options)
        return page(
            staff.request,
            "new_student.html",
            nav="new",
            values=values,
            matches=result["matches"],
            **options,
        )
    staff.keep(result["password"])
    return _back_to_user(result["created"], "Student account created.")


def _school_and_class_options(session: Session, actor: Actor) -> dict[str, Any]:
    schools = roster.list_schools(session, actor.tenant_id)
    if actor.role == "school_admin":
        schools = [s for s in schools if s.id in actor.school_ids]
    return {
        "schools": [(s.id, s.name) for s in schools],
        "classes": [(c.id, c.title, c.school_id) for c in roster.list_classes(session, actor)],
    }


@staff_page
async def bulk(staff: StaffRequest) -> Response:
    form = await staff.request.form()
    user_ids = [str(v) for v in form.getlist("user_id")]
    action = str(form.get("action") or "")
    if form.get("scope") == "all":
        user_ids = await staff.work(lambda session, actor: _all_matching(session, actor, form))
    if not user_ids:
        return RedirectResponse(
            "/admin/users?" + urlencode({"done": "Select at least one user."}), status_code=303
        )
    if action == "deactivate" and form.get("confirmed") != "1":
        return await _confirm_deactivation(staff, form, user_ids)
    if action.startswith(("print", "pdf")):
        checked = form.get("address_checked") == "1"
        try:
            return await _print_action(staff, action, user_ids, address_checked=checked)
        except DomainError as error:  # an unknown or hidden user: nothing printed, nothing kept
            return RedirectResponse(
                "/admin/users?" + urlencode({"done": error.message}), status_code=303
            )

    def run(session: Session, actor: Actor) -> str:
        chosen = [users.get_user(session, actor, uid) for uid in user_ids]
        if action == "send_activation":
            sent = invitations.send_activation_emails(
                session,
                actor,
                chosen,
                issuer=staff.context.settings.issuer,
                students_only=True,
                mail_configured=bool(staff.context.settings.smtp_url),
                message=str(form.get("email_message") or ""),
            )
            skipped = [f"{o.user.display_name}: {o.skipped}" for o in sent if o.skipped]
            count = len(sent) - len(skipped)
            staff.keep(json.dumps({"activation": [o.user.id for o in sent if not o.skipped]}))
            return f"Activation emails queued for {count} student(s)." + (
                f" Skipped: {'; '.join(skipped)}" if skipped else ""
            )
        if action == "void_badges":
            voided = sum(badges.void_badge(session, actor, user) for user in chosen)
            return f"Voided {voided} badge(s)."
        if action == "deactivate":
            deactivated = refused = 0
            for user in chosen:
                try:
                    deactivated += users.deactivate_user(session, actor, user)
                except DomainError:
                    refused += 1
            managed = f"{refused} skipped (managed by a connection)"
            return f"Deactivated {deactivated} account(s); {managed}."
        by_email = action == "reset_temporary" and form.get("email_passwords") == "1"
        if by_email:
            password_emails.ensure_mail_configured(bool(staff.context.settings.smtp_url))
        outcomes = credentials.reset_passwords(
            session, actor, chosen, box=staff.context.box, temporary=action != "reset_permanent"
        )
        skipped = [f"{o.user.display_name}: {o.skipped}" for o in outcomes if o.skipped]
        reset = len(outcomes) - len(skipped)
        if action == "reset_temporary" and reset:
            # Hand over the new passwords: the list offers printing exactly these (item 9).
            staff.keep(json.dumps([o.user.id for o in outcomes if not o.skipped]))
        emailed = ""
        if by_email:
            done = [o.user for o in outcomes if not o.skipped]
            sent = password_emails.email_new_passwords(
                session, actor, done, issuer=staff.context.settings.issuer
            )
            unsent = [o.user.display_name for o in sent if o.skipped]
            emailed = f" New passwords emailed to {len(sent) - len(unsent)} student(s)." + (
                f" Not emailed (no address): {', '.join(unsent)}." if unsent else ""
            )
        return (
            f"Reset {reset} student password(s)."
            + emailed
            + (f" Skipped: {'; '.join(skipped)}" if skipped else "")
        )

    try:
        message = await staff.work(run)
    except DomainError as error:
        message = error.message
    search = {k: str(form.get(k)) for k in SEARCH_FIELDS if form.get(k)}
    return RedirectResponse(
        "/admin/users?" + urlencode({**search, "done": message}), status_code=303
    )


SEARCH_FIELDS = ("q", "role", "school", "class", "grade", "inactive")


CONFIRM_SHOWN = 20


async def _confirm_one(staff: StaffRequest, override: bool) -> Response:
    """Ask before deactivating one account, by name (issue 14, item 10)."""
    user_id = staff.request.path_params["user_id"]
    try:
        name = await staff.work(
            lambda session, actor: users.get_user(session, actor, user_id).display_name
        )
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
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


async def _confirm_deactivation(staff: StaffRequest, form: Any, user_ids: list[str]) -> Response:
    """Ask before deactivating, naming the count and the first accounts (issue 14, item 10)."""

    def names(session: Session, actor: Actor) -> list[str]:
        chosen = user_ids[:CONFIRM_SHOWN]
        return [users.get_user(session, actor, uid).display_name for uid in chosen]

    try:
        shown = await staff.work(names)
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
    count = len(user_ids)
    everyone = form.get("scope") == "all"
    skip = ("csrf_token", "form_token", "scope")
    carried = [(k, v) for k, v in form.multi_items() if k not in skip and k != "user_id"]
    carried += [("user_id", uid) for uid in user_ids]
    return page(
        staff.request,
        "confirm.html",
        nav="users",
        question=(
            f"Deactivate all {count} users matching this search?"
            if everyone
            else f"Deactivate {count} account{'s' if count != 1 else ''}?"
        ),
        names=shown,
        more=max(0, count - len(shown)),
        consequence="They can no longer sign in. Their data stays and you can reactivate them.",
        action="/admin/users/bulk",
        carried=carried,
        confirm_label=f"Deactivate {count} account{'s' if count != 1 else ''}",
        back="/admin/users",
    )


async def _print_action(
    staff: StaffRequest, action: str, user_ids: list[str], *, address_checked: bool = False
) -> Response:
    """The sheet a print or PDF action of the bulk form asks for."""
    if action == "print_badges":
        return await _print_badges(staff, user_ids)
    if action == "print_activation_qr":
        return await _print(staff, user_ids, "paper-saver", activation_qr=True)
    layout = "per-page" if action.endswith("per_page") else "paper-saver"
    return await _print(
        staff, user_ids, layout, as_pdf=action.startswith("pdf"), address_checked=address_checked
    )


def _all_matching(session: Session, actor: Actor, form: Any) -> list[str]:
    """Every user matching the search the bulk form carries (a whole class or grade)."""
    ids: list[str] = []
    while len(ids) < MAX_BULK:
        found = search.search_users(session, actor, _query_from(form, limit=500, offset=len(ids)))
        ids += [user.id for user in found.items]
        if not found.has_next:
            break
    return ids[:MAX_BULK]


async def _print_badges(staff: StaffRequest, user_ids: list[str]) -> Response:
    """A badge sheet: each student's live badge, or a new one for students without."""
    box = badges.badge_box(staff.context.settings.secret_keys)
    issuer = staff.context.settings.issuer

    def load(session: Session, actor: Actor) -> list[dict[str, Any]]:
        chosen = [users.get_user(session, actor, uid) for uid in user_ids]
        titles = roster.class_titles_of(session, [u.id for u in chosen])
        cards = []
        for user in chosen:
            card = user_view(user, titles[user.id])
            try:
                token = badges.reveal_badge(session, actor, user, box=box)
                if token is None:
                    token = badges.issue_badge(session, actor, user, box=box).token
                card["qr"] = qr_data_uri(f"{issuer}/login/badge?badge={token}")
                live = badges.live_badge(session, user)
                card["expires"] = f"{live.expires_at:%Y-%m-%d}" if live else ""
            except DomainError as error:
                card["note"] = error.message
            cards.append(card)
        classes = [title for user in chosen for title in titles[user.id]]
        audit.record_read(session, actor, "badge_sheet", users=chosen, classes=classes)
        return cards

    cards = await staff.work(load)
    return page(staff.request, "badges.html", cards=cards, sign_in_url=f"{issuer}/login/badge")


async def _print(
    staff: StaffRequest,
    user_ids: list[str],
    layout: str,
    *,
    as_pdf: bool = False,
    activation_qr: bool = False,
    address_checked: bool = False,
) -> Response:
    """Credential cards: the temporary password of ``issued`` accounts, or with
    ``activation_qr`` a one-time activation link as a QR code (nothing reusable on paper).
    A PDF carries the sign-in address only when it is the one in use or staff checked it."""
    issuer = staff.context.settings.issuer
    unchecked = as_pdf and not address_checked and _address_in_doubt(staff)

    def load(session: Session, actor: Actor) -> list[dict[str, Any]]:
        chosen = [users.get_user(session, actor, uid) for uid in user_ids]
        titles = roster.class_titles_of(session, [u.id for u in chosen])
        cards = []
        for user in chosen:
            card = user_view(user, titles[user.id])
            state = card["credential_state"]
            if activation_qr and state in ("pending", "issued"):
                try:
                    link = create_activation_link(session, actor, user, for_print=True)
                    card["qr"] = qr_data_uri(link.url(issuer))
                except DomainError as error:
                    card["note"] = error.message
            elif state == "issued":
                try:
                    card["password"] = credentials.reveal_temporary_password(
                        session, actor, user, box=staff.context.box
                    )
                except DomainError:
                    card["note"] = "Activated by link: no password to show."
            elif state == "active":
                card["note"] = "Activated — reset to issue a new one."
            elif state == "sso":
                card["note"] = f"Signs in with {card['sso_provider']}."
            else:
                card["note"] = "No password issued yet — reset to issue one."
            cards.append(card)
        what = "credential_pdf" if as_pdf else "credential_print"
        classes = [title for user in chosen for title in titles[user.id]]
        audit.record_read(session, actor, what, users=chosen, classes=classes)
        return cards

    cards = await staff.work(load)
    sign_in_url = staff.context.settings.issuer + "/login"
    if unchecked:
        return page(
            staff.request,
            "print.html",
            status_code=409,
            cards=cards,
            layout=layout,
            sign_in_url=sign_in_url,
            user_ids=user_ids,
            error="Confirm that students can open the sign-in address before downloading the PDF.",
        )
    if as_pdf:
        document = await run_in_threadpool(credential_sheet, cards, layout, sign_in_url)
        disposition = f'attachment; filename="sign-in-cards-{layout}.pdf"'
        return Response(
            document,
            media_type="application/pdf",
            headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
        )
    return page(
        staff.request,
        "print.html",
        cards=cards,
        layout=layout,
        sign_in_url=sign_in_url,
        user_ids=user_ids,
    )


def _address_in_doubt(staff: StaffRequest) -> bool:
    """Whether the configured sign-in address differs from the one this request used."""
    used = str(staff.request.base_url)
    return address_warning(staff.context.settings.issuer, used) is not None


@staff_page
async def connection_list(staff: StaffRequest) -> Response:
    params = staff.request.query_params
    token = await staff.kept_secret()
    return await _render_connections(
        staff, flash=params.get("done"), token=token, token_for=params.get("for") if token else None
    )


async def _render_connections(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    def load(session: Session, actor: Actor) -> list[dict[str, Any]]:
        from server.domain.access import ensure_can_manage_connections

        ensure_can_manage_connections(actor)
        incomplete = completeness.incomplete_counts(session, actor.tenant_id)
        return [
            {
                **connection_view(c, connections.recent_failures(session, actor, c)),
                **connection_defaults_view(session, c, incomplete),
                "source": source_view(c),
            }
            for c in connections.list_connections(session, actor.tenant_id)
        ]

    def schools(session: Session, actor: Actor) -> list[tuple[str, str]]:
        return [(o.sourced_id, o.name) for o in roster.list_schools(session, actor.tenant_id)]

    try:
        rows = await staff.work(load)
        school_options = await staff.work(schools)
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
    return page(
        staff.request,
        "connections.html",
        status_code=status,
        nav="connections",
        rows=rows,
        roles=ROLES,
        schools=school_options,
        **extra,
    )


@staff_page
async def job_queue(staff: StaffRequest) -> Response:
    """The background job queue of the district: waiting, running and failed jobs (district
    admins only)."""
    try:
        report = await staff.work(jobs.queue_report)
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
    return page(staff.request, "jobs.html", nav="jobs", report=report)


@staff_page
async def connection_add(staff: StaffRequest) -> Response:
    form = await staff.form()

    def add(session: Session, actor: Actor) -> tuple[str, str]:
        issued = connections.create_connection(
            session,
            actor,
            str(form.get("name", "")),
            str(form.get("kind", "scim")),
            sso_provider=str(form.get("sso_provider") or "") or None,
            profile=str(form.get("profile") or "") or None,
        )
        apply_source_form(session, actor, issued.connection, form, staff.context)
        return issued.connection.name, issued.token

    try:
        name, token = await staff.work(add)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    staff.keep(token)
    return _back_to_connections(f"Connection {name} added.", name)


@staff_page
async def connection_defaults(staff: StaffRequest) -> Response:
    """The default role and school of users a connection pushes without one."""
    name = staff.request.path_params["name"]
    form = await staff.form()

    def save(session: Session, actor: Actor) -> str:
        connection = connections.get_connection(session, actor.tenant_id, name)
        completeness.set_defaults(
            session,
            actor,
            connection,
            role=str(form.get("default_role") or ""),
            school_sourced_id=str(form.get("default_school") or ""),
        )
        return connection.name

    try:
        saved = await staff.work(save)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    return _back_to_connections(f"Defaults of {saved} saved.")


@staff_page
async def connection_source(staff: StaffRequest) -> Response:
    """Change a connection's upstream, schedules or drop folder (the pull form)."""
    name = staff.request.path_params["name"]
    form = await staff.form()

    def change(session: Session, actor: Actor) -> None:
        connection = connections.get_connection(session, actor.tenant_id, name)
        apply_source_form(session, actor, connection, form, staff.context)

    try:
        await staff.work(change)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    return await _render_connections(staff, flash=f"Connection {name} updated.")


@staff_page
async def connection_rotate(staff: StaffRequest) -> Response:
    name = staff.request.path_params["name"]

    def rotate(session: Session, actor: Actor) -> str:
        return connections.rotate_token(session, actor, name).token

    try:
        token = await staff.work(rotate)
    except DomainError as error:
        return await _render_connections(staff, status=error.status, error=error.message)
    staff.keep(token)
    return _back_to_connections(f"New token for {name}; the old one no longer works.", name)


def _back_to_connections(message: str, name: str | None = None) -> Response:
    query = {"done": message, **({"for": name} if name else {})}
    return RedirectResponse("/admin/connections?" + urlencode(query), status_code=303)


@staff_page
async def audit_log(staff: StaffRequest) -> Response:
    params = staff.request.query_params

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        events = audit.search_events(
            session,
            actor,
            target_id=params.get("target") or None,
            actor_name=params.get("who") or None,
            action=params.get("action") or None,
            since=_day(params.get("from"), "from"),
            until=_day(params.get("to"), "to", end_of_day=True),
        )
        rows = [
            {
                "at": e.at.isoformat(timespec="seconds"),
                "who": f"{e.actor_name} ({e.actor_kind}" + (f" via {e.via})" if e.via else ")"),
                "action": e.action,
                "target": e.target_label or e.target_id,
                "target_id": e.target_id,
                "changes": e.changes,
                "detail": e.detail,
                "override": e.override,
            }
            for e in events
        ]
        return {"rows": rows, "purge": purge_view(session, actor)}

    try:
        data = await staff.work(load)
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
    return page(staff.request, "audit.html", nav="audit", params=params, **data)


def _day(value: str | None, field: str, *, end_of_day: bool = False) -> datetime | None:
    day = parse_date(value, field)
    if day is None:
        return None
    start = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    return start


def _back_to_user(user_id: str, message: str) -> Response:
    return RedirectResponse(
        f"/admin/users/{user_id}?" + urlencode({"done": message}), status_code=303
    )


async def _has_several_tenants(request: Request) -> bool:
    """Whether the sign-in page asks for a district name. It never lists them (issue 11)."""
    context = context_of(request)

    def load() -> bool:
        with context.database.session() as session:
            return len(list_tenants(session)) > 1

    return await run_in_threadpool(load)


@staff_page
async def request_list(staff: StaffRequest) -> Response:
    return await _render_requests(staff, flash=staff.request.query_params.get("done"))


async def _render_requests(staff: StaffRequest, status: int = 200, **extra: Any) -> Response:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        # Decided requests stay listed with their outcome, after the waiting ones.
        rows = account_requests.list_requests(session, actor, status=None)
        rows.sort(key=lambda r: r.status != "pending")
        classes = {c.id: c.title for c in roster.list_classes(session, actor)}
        return {
            "rows": [
                {
                    "id": r.id,
                    "name": f"{r.given_name} {r.family_name}",
                    "status": r.status,
                    "birth_date": r.birth_date.isoformat() if r.birth_date else "",
                    "class": classes.get(r.class_id or "", ""),
                    "by": r.requester_name,
                    "note": r.note,
                    "reason": r.decline_reason,
                    "user_id": r.user_id,
                }
                for r in rows
            ],
            "classes": list(classes.items()),
        }

    try:
        data = await staff.work(load)
    except DomainError as error:
        return page(staff.request, "error.html", status_code=error.status, error=error.message)
    extra.setdefault("values", {})
    return page(staff.request, "requests.html", status_code=status, nav="requests", **data, **extra)


@staff_page
async def request_submit(staff: StaffRequest) -> Response:
    form = await staff.form()

    def submit(session: Session, actor: Actor) -> None:
        account_requests.submit_request(
            session,
            actor,
            given_name=str(form.get("given_name", "")),
            family_name=str(form.get("family_name", "")),
            class_id=str(form.get("class_id", "")),
            birth_date=str(form.get("birth_date") or "") or None,
            note=str(form.get("note") or ""),
            allow_duplicate=form.get("allow_duplicate") == "1",
        )

    try:
        await staff.work(submit)
    except DomainError as error:
        return await _render_requests(
            staff,
            status=error.status,
            error=error.message,
            duplicates=getattr(error, "matches", None),
            values={k: str(v) for k, v in form.items()},
        )
    return _back_to_requests("Request sent to your school admin.")


@staff_page
async def request_decide(staff: StaffRequest) -> Response:
    request_id, decision = (
        staff.request.path_params["request_id"],
        staff.request.path_params["decision"],
    )
    form = await staff.form()

    def decide(session: Session, actor: Actor) -> dict[str, Any] | None:
        if decision == "approve":
            approval = account_requests.approve_request(
                session,
                actor,
                request_id,
                box=staff.context.box,
                allow_duplicate=form.get("allow_duplicate") == "1",
            )
            return {"user": approval.user.id, "password": approval.password}
        account_requests.decline_request(session, actor, request_id, str(form.get("reason") or ""))
        return None

    try:
        result = await staff.work(decide)
    except DomainError as error:
        matches = getattr(error, "matches", None)
        return await _render_requests(
            staff,
            status=error.status,
            error=error.message,
            duplicates=matches,
            anyway_request=request_id if matches else None,
        )
    if result:
        staff.keep(result["password"])
        return _back_to_user(result["user"], "Request approved: the account was created.")
    return _back_to_requests("Request declined; the teacher sees your reason.")


def _back_to_requests(message: str) -> Response:
    return RedirectResponse("/admin/requests?" + urlencode({"done": message}), status_code=303)
