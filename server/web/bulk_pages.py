"""Bulk actions on chosen students (deactivate, reset, invite, badges) and printing their
credentials. Every action is authorised by the domain, not only hidden in the page."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from server.domain import (
    audit,
    badges,
    credentials,
    invitations,
    password_emails,
    roster_views,
    search,
    users,
)
from server.domain.activation import create_activation_link
from server.domain.actors import Actor
from server.errors import DomainError
from server.web.address import address_warning
from server.web.pdf import credential_sheet
from server.web.presenters import (
    user_view,
)
from server.web.qr import qr_data_uri
from server.web.render import page
from server.web.staffauth import StaffRequest, staff_page
from server.web.user_pages import query_from

MAX_BULK = 2000


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


async def _confirm_deactivation(staff: StaffRequest, form: Any, user_ids: list[str]) -> Response:
    """Ask before deactivating, naming the count and the first accounts (issue 14, item 10)."""

    def names(session: Session, actor: Actor) -> list[str]:
        chosen = user_ids[:CONFIRM_SHOWN]
        return [users.get_user(session, actor, uid).display_name for uid in chosen]

    shown = await staff.work(names)
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
        found = search.search_users(session, actor, query_from(form, limit=500, offset=len(ids)))
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
        titles = roster_views.class_titles_of(session, [u.id for u in chosen])
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
        titles = roster_views.class_titles_of(session, [u.id for u in chosen])
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
