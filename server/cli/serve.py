"""``rollcall serve``: migrate, optionally seed the demo district, print how to try it, serve."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

import uvicorn

from server.app import create_app
from server.cli.output import Output
from server.config import load_settings
from server.context import AppContext
from server.db.migrate import upgrade
from server.demo import DEMO_TENANT, DemoCredentials, load_or_seed
from server.domain import tenants
from server.logs import configure_logging


def run(args: argparse.Namespace, output: Output) -> int:
    settings = load_settings()
    if not os.environ.get("ROLLCALL_ISSUER"):
        # The printed sign-in address must be one that reaches this server: without a
        # configured issuer, it is the address we listen on (README "Sign-in address").
        derived = own_address(args.host, args.port)
        os.environ["ROLLCALL_ISSUER"] = derived  # seen by --workers processes too
        settings = replace(settings, issuer=derived)
    context = AppContext.from_settings(settings)
    upgrade(context.database.engine)
    with context.database.session() as session:
        if args.demo:
            demo = load_or_seed(session, context.box, settings.data_dir)
            _print_demo(output, demo, settings.issuer, args.host, args.port)
        elif not tenants.list_tenants(session):
            tenants.create_tenant(session, "Default District")
    context.database.dispose()
    configure_logging()
    if args.workers > 1:
        uvicorn.run(
            "server.app:create_serving_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=False,
            log_config=None,
        )
    else:
        uvicorn.run(
            create_app(settings), host=args.host, port=args.port, access_log=False, log_config=None
        )
    return 0


def own_address(host: str, port: int) -> str:
    """The base URL of ``--host/--port``.

    >>> own_address("::1", 8080)
    'http://[::1]:8080'
    """
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _print_demo(output: Output, demo: DemoCredentials, issuer: str, host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    data = {
        "tenant": demo.tenant,
        "url": base,
        "admin": {
            "url": f"{base}/admin/login",
            "username": demo.admin_username,
            "password": demo.admin_password,
        },
        "teacher": {"username": demo.teacher_username, "password": demo.teacher_password},
        "student": {
            "url": f"{base}/login",
            "username": demo.student_username,
            "password": demo.student_password,
        },
        "scim": {
            "url": f"{base}/scim/v2",
            "connection": demo.scim_connection,
            "token": demo.scim_token,
        },
        "oneroster": {
            "url": f"{base}/ims/oneroster/rostering/v1p2",
            "token_url": f"{base}/oauth/token",
            "client_id": demo.oneroster_client_id,
            "client_secret": demo.oneroster_client_secret,
        },
        "health": f"{base}/healthz",
        "issuer": issuer,
    }
    message = f"""
[bold]Rollcall[/bold] is serving the demo district [bold]{DEMO_TENANT}[/bold] at {base}

  Staff sign-in   {base}/admin/login
                  admin   / {demo.admin_password}   (district admin)
                  teacher / {demo.teacher_password}   (teacher at Maple Primary)
  Student sign-in {base}/login
                  {demo.student_username} / {demo.student_password}   (temporary: change it)
  SCIM 2.0        {base}/scim/v2   connection "{demo.scim_connection}"
                  Authorization: Bearer {demo.scim_token}
  OneRoster 1.2   {base}/ims/oneroster/rostering/v1p2/users   (OAuth 2 client credentials)
                  client_id {demo.oneroster_client_id}  secret {demo.oneroster_client_secret}
  Try             curl {base}/healthz
                  curl -H "Authorization: Bearer {demo.scim_token}" {base}/scim/v2/Users
"""
    output.result(data, message)
