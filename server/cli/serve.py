"""``rollcall serve`` and ``rollcall worker``: migrate, optionally seed the demo district, print
how to try it, serve; the job worker runs in every serving process unless ``--no-worker``."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict

import uvicorn

from server.cli.listeners import balance_workers, reuse_port_socket
from server.cli.operations import check_secret_keys
from server.cli.output import Output
from server.cli.tenant import DEFAULT_TENANT
from server.config import SERVE_PROCESSES, Settings, load_settings
from server.context import AppContext
from server.db.migrate import upgrade
from server.demo import DEMO_TENANT, DemoCredentials, load_or_seed
from server.domain import tenants
from server.logs import configure_logging
from server.worker import Worker, interrupt_abandoned_runs


# How uvicorn runs Rollcall. uvicorn's own proxy handling is off: by default it believes an
# X-Forwarded-For from 127.0.0.1, so any local client could pick its own throttle key. The app
# reads the header itself, only from ROLLCALL_TRUSTED_PROXIES (server.app.create_app).
class ServerOptions(TypedDict):
    proxy_headers: bool
    access_log: bool
    log_config: dict[str, Any] | None
    timeout_worker_healthcheck: int


# With --workers, uvicorn's supervisor restarts a process that has not answered its ping within
# timeout_worker_healthcheck (5 s by default): on a busy machine a starting process (imports,
# migrations check, a CPU-bound import in a thread) can take longer, and was killed in a loop.
SERVER_OPTIONS: ServerOptions = {
    "proxy_headers": False,
    "access_log": False,
    "log_config": None,
    "timeout_worker_healthcheck": 30,
}


def run(args: argparse.Namespace, output: Output) -> int:
    """Serve; every process also runs the job worker unless ``--no-worker`` (SPEC §11)."""
    configure_logging()
    settings = load_settings()
    if args.fd is not None:
        args.host, args.port = inherited_address(args.fd)
    if not os.environ.get("ROLLCALL_ISSUER"):
        # The printed sign-in address must be one that reaches this server: without a
        # configured issuer, it is the address we listen on (README "Sign-in address").
        derived = own_address(args.host, args.port)
        os.environ["ROLLCALL_ISSUER"] = derived  # seen by --workers processes too
        settings = replace(settings, issuer=derived)
    context = AppContext.from_settings(settings)
    upgrade(context.database.engine)
    check_secret_keys(context)
    interrupt_abandoned_runs(context)  # runs of a killed process (the worker polls for more)
    with context.database.session() as session:
        if args.demo:
            demo = load_or_seed(session, context.box, settings.data_dir)
            _print_demo(output, demo, settings.issuer, args.host, args.port)
        elif not tenants.list_tenants(session):
            tenants.create_tenant(session, DEFAULT_TENANT)
    context.database.dispose()
    with_worker = not args.no_worker
    if args.workers > 1:
        # Each uvicorn process builds its own app (and configures its own logging) from this
        # factory; see server.app.create_serving_app.
        factory = "create_serving_app" if with_worker else "create_web_app"
        _share_metrics(settings.data_dir / "metrics")
        # each process keeps its share of the database connections (Settings.process_connections)
        os.environ[SERVE_PROCESSES] = str(args.workers)
        # a listening socket per process, so the kernel spreads connections over them
        balance_workers()
        group = None if args.fd is not None else reuse_port_socket(args.host, args.port)
        uvicorn.run(
            f"server.app:{factory}",
            factory=True,
            host=args.host,
            port=args.port,
            fd=args.fd if group is None else group.fileno(),
            workers=args.workers,
            timeout_graceful_shutdown=grace_period(settings),
            timeout_keep_alive=settings.keep_alive_seconds,
            **SERVER_OPTIONS,
        )
    else:
        # here, not at the top: with --workers the parent only supervises, and each worker
        # imports the app itself (the parent's import was seconds of CPU for nothing)
        from server.app import create_app

        app = create_app(settings, worker=with_worker)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            fd=args.fd,
            timeout_graceful_shutdown=grace_period(settings),
            timeout_keep_alive=settings.keep_alive_seconds,
            **SERVER_OPTIONS,
        )
    return 0


def inherited_address(fd: int) -> tuple[str, int]:
    """The host and port of the TCP socket ``--fd`` hands over (so the printed and derived
    addresses are the ones served); the descriptor itself stays open for uvicorn."""
    with socket.socket(fileno=os.dup(fd)) as inherited:
        host, port = inherited.getsockname()[:2]
    return host, port


def _share_metrics(folder: Path) -> None:
    """prometheus-client's multiprocess mode: each uvicorn process writes its counters under
    ``folder`` (emptied now: the files of a previous run would be added in)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def run_worker(args: argparse.Namespace, output: Output) -> int:
    """``rollcall worker``: run the job queue alone until SIGTERM or Ctrl-C."""
    configure_logging()
    settings = load_settings()
    context = AppContext.from_settings(settings)
    upgrade(context.database.engine)
    check_secret_keys(context)
    worker = Worker(context)
    # SIGTERM/Ctrl-C: stop taking jobs; the job in hand has the grace period
    worker.shutdown.watch_signals(chain=False)
    worker.run()
    context.database.dispose()
    return 0


def grace_period(settings: Settings) -> int:
    """How long in-flight requests may run after SIGTERM (``ROLLCALL_SHUTDOWN_GRACE_SECONDS``);
    imports still running then are interrupted by the app's shutdown (issue 13)."""
    return max(int(settings.shutdown_grace_seconds), 1)


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
