"""Staff sign-in and sign-out, and the admin home. Every action is authorised by the domain, not
only hidden in the page."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.domain.staff import StaffSignIn, sign_in_staff
from server.domain.tenants import get_tenant, list_tenants
from server.errors import DomainError
from server.web import cookies
from server.web.render import page
from server.web.staffauth import StaffRequest, context_of, staff_page


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


async def _has_several_tenants(request: Request) -> bool:
    """Whether the sign-in page asks for a district name. It never lists them (issue 11)."""
    context = context_of(request)

    def load() -> bool:
        with context.database.session() as session:
            return len(list_tenants(session)) > 1

    return await run_in_threadpool(load)
