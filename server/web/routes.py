"""The routes of the staff surfaces: pages under /admin and the JSON API under /admin/api."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from server.web import (
    api,
    audit_page,
    bulk_pages,
    connection_pages,
    deletion_pages,
    imports_page,
    new_student_page,
    request_pages,
    schools_api,
    schools_page,
    settings_page,
    signin_pages,
    upstream_page,
    user_pages,
)

STATIC = Path(__file__).parent / "static"


def admin_routes() -> list[BaseRoute]:
    return [
        Mount("/admin/static", app=StaticFiles(directory=STATIC), name="admin-static"),
        Route("/admin", signin_pages.home),
        Route("/admin/", signin_pages.home),
        Route("/admin/login", signin_pages.login_form, methods=["GET"]),
        Route("/admin/login", signin_pages.login, methods=["POST"]),
        Route("/admin/logout", signin_pages.logout, methods=["POST"]),
        Route("/admin/users", user_pages.user_list, methods=["GET"]),
        Route("/admin/users/new", new_student_page.new_student_form, methods=["GET"]),
        Route("/admin/users/new", new_student_page.new_student, methods=["POST"]),
        Route("/admin/users/bulk", bulk_pages.bulk, methods=["POST"]),
        Route("/admin/users/{user_id}", user_pages.user_detail, methods=["GET"]),
        Route("/admin/users/{user_id}", user_pages.user_update, methods=["POST"]),
        Route("/admin/users/{user_id}/status", user_pages.user_status, methods=["POST"]),
        Route("/admin/users/{user_id}/reset", user_pages.user_reset, methods=["POST"]),
        Route("/admin/users/{user_id}/reveal", user_pages.user_reveal, methods=["POST"]),
        Route("/admin/users/{user_id}/invite", user_pages.user_invite, methods=["POST"]),
        Route("/admin/users/{user_id}/badge", user_pages.user_badge, methods=["POST"]),
        Route("/admin/users/{user_id}/delete", deletion_pages.delete_user, methods=["POST"]),
        Route("/admin/requests", request_pages.request_list, methods=["GET"]),
        Route("/admin/requests", request_pages.request_submit, methods=["POST"]),
        Route(
            "/admin/requests/{request_id}/{decision:str}",
            request_pages.request_decide,
            methods=["POST"],
        ),
        Route("/admin/import", imports_page.import_form, methods=["GET"]),
        Route(
            "/admin/import",
            imports_page.UploadLimit(imports_page.trial_run, imports_page.MAX_FORM_BODY),
            methods=["POST"],
        ),
        Route(
            "/admin/import/apply",
            imports_page.UploadLimit(imports_page.apply_import, imports_page.MAX_APPLY_BODY),
            methods=["POST"],
        ),
        Route("/admin/export", imports_page.export_download, methods=["POST"]),
        Route("/admin/import/codes", imports_page.status_code_legend, methods=["GET"]),
        Route("/admin/import/{run_id:str}", imports_page.import_run, methods=["GET"]),
        Route("/admin/connections", connection_pages.connection_list, methods=["GET"]),
        Route("/admin/connections", connection_pages.connection_add, methods=["POST"]),
        Route(
            "/admin/connections/{name}/rotate", connection_pages.connection_rotate, methods=["POST"]
        ),
        Route(
            "/admin/connections/{name}/defaults",
            connection_pages.connection_defaults,
            methods=["POST"],
        ),
        Route(
            "/admin/connections/{name}/source", connection_pages.connection_source, methods=["POST"]
        ),
        Route("/admin/connections/{name}/sign-in", upstream_page.sign_in_provider),
        Route(
            "/admin/connections/{name}/sign-in",
            upstream_page.set_sign_in_provider,
            methods=["POST"],
        ),
        Route("/admin/audit", audit_page.audit_log, methods=["GET"]),
        Route("/admin/settings", settings_page.settings_form, methods=["GET"]),
        Route("/admin/settings", settings_page.settings_save, methods=["POST"]),
        Route("/admin/api/settings", settings_page.read_settings, methods=["GET"]),
        Route("/admin/api/settings", settings_page.change_settings, methods=["PATCH"]),
        Route("/admin/schools", schools_page.school_list, methods=["GET"]),
        Route("/admin/schools", schools_page.school_add, methods=["POST"]),
        Route(
            "/admin/schools/{sourced_id:path}/status", schools_page.school_status, methods=["POST"]
        ),
        Route("/admin/schools/{sourced_id:path}", schools_page.school_change, methods=["POST"]),
        Route("/admin/jobs", connection_pages.job_queue, methods=["GET"]),
        Route("/admin/api/openapi.json", api.openapi, methods=["GET"]),
        Route("/admin/api/users", api.list_users, methods=["GET"]),
        Route("/admin/api/users", api.create_user, methods=["POST"]),
        Route("/admin/api/users/{user_id}", api.get_user, methods=["GET"]),
        Route("/admin/api/users/{user_id}", api.update_user, methods=["PATCH"]),
        Route("/admin/api/users/{user_id}", api.delete_user, methods=["DELETE"]),
        Route("/admin/api/users/{user_id}/export", api.export_user, methods=["GET"]),
        Route("/admin/api/users/{user_id}/password", api.reset_password, methods=["POST"]),
        Route("/admin/api/users/{user_id}/password/reveal", api.reveal_password, methods=["POST"]),
        Route("/admin/api/connections", api.list_connections, methods=["GET"]),
        Route("/admin/api/connections", api.create_connection, methods=["POST"]),
        Route("/admin/api/connections/{name}", api.change_connection, methods=["PATCH"]),
        Route(
            "/admin/api/connections/{name}/rotate", api.rotate_connection_token, methods=["POST"]
        ),
        Route("/admin/api/audit", api.audit_events, methods=["GET"]),
        Route("/admin/api/schools", schools_api.list_schools, methods=["GET"]),
        Route("/admin/api/schools", schools_api.add_school, methods=["POST"]),
        Route(
            "/admin/api/schools/{sourced_id:path}/deactivate",
            schools_api.deactivate_school,
            methods=["POST"],
        ),
        Route(
            "/admin/api/schools/{sourced_id:path}/reactivate",
            schools_api.reactivate_school,
            methods=["POST"],
        ),
        Route("/admin/api/schools/{sourced_id:path}", schools_api.get_school, methods=["GET"]),
        Route("/admin/api/schools/{sourced_id:path}", schools_api.change_school, methods=["PATCH"]),
        Route("/admin/api/clients", api.list_clients, methods=["GET"]),
        Route("/admin/api/clients", api.create_client, methods=["POST"]),
        Route("/admin/api/classes", api.list_classes, methods=["GET"]),
        Route("/admin/api/classes/{class_id}/students", api.class_students, methods=["GET"]),
    ]
