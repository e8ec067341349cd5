"""The JSON Web Key Set (RFC 7517 §5) of the ID token signing keys, at ``/oauth/jwks``.

Current keys and recently retired ones (see :mod:`server.domain.keys`), each with its ``kid``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.context import AppContext
from server.domain import keys


def key_set(context: AppContext) -> dict[str, list[dict[str, object]]]:
    with context.database.session() as session:
        box = keys.signing_box(context.settings.secret_keys)
        return {"keys": keys.published_keys(session, box)}


async def jwks(request: Request) -> Response:
    context: AppContext = request.app.state.context
    body = await run_in_threadpool(key_set, context)
    return JSONResponse(
        body, headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
    )
