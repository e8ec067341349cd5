"""An HTTP client for an upstream OneRoster 1.1 or 1.2 REST API (what a pull reads from).

It gets an OAuth 2 client-credentials token (RFC 6749 §4.4), or signs every request with
OAuth 1.0a (a 1.1 hub without a token endpoint, ``server/imports/signing.py``), and walks
collections with ``limit``/``offset`` paging (OneRoster 1.2 Rostering REST §3.4) until
``X-Total-Count`` or an empty page; a delta asks ``filter=dateLastModified>'…'`` (§3.4.4).
Only GETs are retried: on network errors, 429 and 5xx, with exponential back-off,
honouring ``Retry-After`` (RFC 9110 §10.2.3), a bounded number of attempts and a bounded total
wait. A 401 during a walk fetches a new token once. The client secret is never logged.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from oneroster import rest_rows
from server import wirejson
from server.domain.import_limits import ImportLimits, page_too_large
from server.errors import DomainError
from server.imports.signing import OAuth1Signer

log = logging.getLogger("rollcall.pull")

UPSTREAM_FAILED = "F004"
SCOPES = {
    "core": "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly",
    "demographics": "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly",
}
# The order the collections are walked in: users before what refers to them.


PATHS = {"1.2": "/rostering/v1p2", "1.1": "/v1p1"}  # under …/ims/oneroster


def detect_version(base_url: str) -> str | None:
    """The OneRoster version a base URL names (``…/v1p1``, ``…/rostering/v1p2``), or None."""
    path = base_url.rstrip("/").casefold()
    for version, marker in (("1.1", "/v1p1"), ("1.2", "/v1p2")):
        if path.endswith(marker):
            return version
    return None


class UpstreamError(DomainError):
    """The upstream cannot be read: unreachable, credentials refused, a malformed answer."""

    status = 502
    code = UPSTREAM_FAILED


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a pull tries: attempts per GET, back-off, and a cap on all waiting."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    total_wait: float = 120.0
    timeout: float = 30.0
    page_size: int = 100


class UpstreamClient:
    """Reads a OneRoster REST API with an OAuth 2 token or OAuth 1.0a signatures."""

    def __init__(
        self,
        base_url: str,
        token_url: str | None,
        client_id: str,
        client_secret: str,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        since: str | None = None,
        limits: ImportLimits | None = None,
    ) -> None:
        """``token_url`` None: sign with OAuth 1.0a instead of fetching a token. ``since``: ask
        only for records modified after this ``dateLastModified`` (a delta pull)."""
        self.base_url = base_url.rstrip("/")
        self.limits = limits or ImportLimits()
        self.token_url = token_url
        self._credentials = (client_id, client_secret)
        self._signer = None if token_url else OAuth1Signer(client_id, client_secret)
        self.since = since
        self.policy = policy
        self._sleep = sleep
        self._waited = 0.0
        self.started_at: datetime | None = None  # the upstream's clock at its first answer
        self._token: str | None = None
        self.http = httpx.Client(timeout=policy.timeout, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def fetch_token(self) -> str:
        """POST the client-credentials grant (never retried: only GETs are)."""
        assert self.token_url is not None
        for scope in (f"{SCOPES['core']} {SCOPES['demographics']}", None):
            data = {"grant_type": "client_credentials"}
            if scope:
                data["scope"] = scope
            try:
                response = self.http.post(self.token_url, data=data, auth=self._credentials)
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                raise UpstreamError(
                    f"The upstream token endpoint {self.token_url} cannot be reached: "
                    f"{type(error).__name__}."
                ) from None
            if response.status_code == 400 and _json(response).get("error") == "invalid_scope":
                continue  # a client without the demographics scope: ask for its default scopes
            if response.status_code in (400, 401, 403):
                reason = _json(response).get("error") or f"HTTP {response.status_code}"
                raise UpstreamError(
                    f"The upstream refused the client credentials ({reason}): check the client id "
                    "and secret."
                )
            if response.status_code != 200:
                raise UpstreamError(
                    f"The upstream token endpoint answered HTTP {response.status_code}."
                )
            token = _json(response).get("access_token")
            if not isinstance(token, str) or not token:
                raise UpstreamError("The upstream token endpoint sent no access_token.")
            self._token = token
            return token
        raise UpstreamError("The upstream refused every scope this client asked for.")

    def get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        """GET with retries on network errors, 429 and 5xx; a 401 renews the token once."""
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._get_bounded(url, params)
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                reason = f"{type(error).__name__}"
                self._back_off(attempt, None, f"{url} cannot be reached ({reason})")
                continue
            if response.status_code == 401 and self._signer is None and not renewed:
                renewed = True
                self._token = None
                attempt -= 1
                continue
            if self.started_at is None and response.status_code == 200:
                self.started_at = _http_date(response.headers.get("Date"))
            if response.status_code == 429 or response.status_code >= 500:
                self._back_off(
                    attempt,
                    response.headers.get("Retry-After"),
                    f"{url} answered HTTP {response.status_code}",
                )
                continue
            return response

    def _get_bounded(self, url: str, params: dict[str, Any]) -> httpx.Response:
        """One signed or token-bearing GET whose body is read as it streams in, and refused
        past ``page_bytes``.

        :raises UpstreamError: F018, the answer is larger than the limit.
        """
        if self._signer is not None:
            request = self.http.build_request("GET", url, params=params)
            response = self.http.send(request, auth=self._signer, stream=True)
        else:
            if self._token is None:
                self.fetch_token()
            headers = {"Authorization": f"Bearer {self._token}"}
            request = self.http.build_request("GET", url, params=params, headers=headers)
            response = self.http.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.limits.page_bytes:
                    raise UpstreamError(page_too_large(self.limits, url), code="F018")
                chunks.append(chunk)
        finally:
            response.close()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            request=response.request,
        )

    def _back_off(self, attempt: int, retry_after: str | None, problem: str) -> None:
        if attempt >= self.policy.attempts:
            raise UpstreamError(f"The upstream failed: {problem}, {attempt} attempt(s).")
        delay = _retry_after(retry_after)
        if delay is None:
            delay = self.policy.base_delay * 2 ** (attempt - 1)
        delay = min(delay, self.policy.max_delay)
        if self._waited + delay > self.policy.total_wait:
            raise UpstreamError(
                f"The upstream failed: {problem}; gave up after waiting "
                f"{self._waited:.0f} s in total."
            )
        log.info("upstream busy, retrying", extra={"problem": problem, "delay": delay})
        self._waited += delay
        self._sleep(delay)

    def find_base(self, version: str | None) -> str | None:
        """The OneRoster version of the API, moving ``base_url`` to it if needed.

        A base URL that names its version (``…/v1p1``, ``…/v1p2``) is used as it is. Otherwise
        the standard paths under it are probed (1.2 ``/rostering/v1p2``, then 1.1 ``/v1p1``;
        only ``version``'s when given) for one that lists ``orgs``; if none does, the base URL
        is used as given and None is returned.

        :raises UpstreamError: the upstream cannot be reached.
        """
        named = detect_version(self.base_url)
        if named is not None:
            return named
        for candidate in [version] if version else list(PATHS):
            url = self.base_url + PATHS[candidate]
            response = self.get(f"{url}/orgs", {"limit": 1})
            if response.status_code == 200 and isinstance(_json(response).get("orgs"), list):
                self.base_url = url
                return candidate
        return None

    def walk(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every object of a collection, page by page (None-terminated by a 403 on OPTIONAL)."""
        key = rest_rows.COLLECTIONS[collection][0]
        url = f"{self.base_url}/{collection}"
        offset, size = 0, self.policy.page_size
        sort: dict[str, str] = {"sort": "sourcedId"}  # a stable order across pages
        since = {"filter": f"dateLastModified>'{self.since}'"} if self.since else {}
        while True:
            response = self.get(url, {"limit": size, "offset": offset, **sort, **since})
            if response.status_code == 400 and sort and offset == 0:
                sort = {}  # an API that does not sort: its own order, then
                continue
            if response.status_code == 401 and self._signer is not None:
                raise UpstreamError(
                    "The upstream refused the OAuth 1.0a signature (HTTP 401): check the "
                    "consumer key and secret."
                )
            if response.status_code in (401, 403):
                raise Forbidden(collection, response.status_code)
            if response.status_code != 200:
                raise UpstreamError(f"GET {url} answered HTTP {response.status_code}.")
            body = _json(response)
            page = body.get(key)
            if not isinstance(page, list) or not all(isinstance(o, dict) for o in page):
                raise UpstreamError(f"GET {url} did not answer a OneRoster {key!r} list.")
            yield from page
            offset += len(page)
            total = _total(response.headers.get("X-Total-Count"))
            if not page or (total is not None and offset >= total):
                return


class Forbidden(Exception):
    """The upstream refused to list a collection (401/403 with a fresh token)."""

    def __init__(self, collection: str, status: int) -> None:
        super().__init__(collection)
        self.collection, self.status = collection, status


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = wirejson.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _total(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header (RFC 9110 §6.6.1) as an aware datetime, or None."""
    try:
        moment = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
