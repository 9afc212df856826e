"""Post-redirect-get for failed form posts: the error (and what was typed) rides to the form's
page in a short-lived signed cookie, so the address bar never holds a POST URL that a reload
would re-post or that answers 405 when opened.

The cookie is HMAC-signed with the secret key (a page shows only what Tandem itself wrote) and
is removed by the next page that renders (app.web.templating.render).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse

from app.config import get_settings

FLASH_COOKIE = "tandem_flash"
MAX_COOKIE_BYTES = 3800  # browsers keep at least 4096 bytes a cookie, name and attributes too
MAX_VALUE_CHARS = 2000


def _sign(payload: bytes) -> str:
    key = get_settings().resolved_secret_key().encode()
    return hmac.new(key, b"flash:" + payload, hashlib.sha256).hexdigest()[:32]


def _encode(data: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=True).encode())
    return f"{payload.decode()}.{_sign(payload)}"


def redirect_with_error(
    url: str, errors: dict[str, str], values: dict[str, Any] | None = None
) -> RedirectResponse:
    """303 to the form's page with the errors (by form section) and the values typed."""
    kept = {
        k: v
        for k, v in (values or {}).items()
        if k not in ("password", "current_password", "new_password", "csrf_token", "login_csrf")
        and not (isinstance(v, str) and len(v) > MAX_VALUE_CHARS)
    }
    errors = {k: v[:MAX_VALUE_CHARS] for k, v in errors.items()}
    value = _encode({"errors": errors, "values": kept})
    if len(value) > MAX_COOKIE_BYTES:  # too much typed to carry: keep the message
        value = _encode({"errors": errors, "values": {}})
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=120,
        httponly=True,
        samesite="lax",
        secure=get_settings().cookie_secure,
        path="/",
    )
    return response


def read_flash(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    """(errors, values) carried to this page, or empty ones."""
    raw = request.cookies.get(FLASH_COOKIE, "")
    payload, _, mac = raw.rpartition(".")
    if not payload or not hmac.compare_digest(_sign(payload.encode()), mac):
        return {}, {}
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return {}, {}
    errors, values = data.get("errors"), data.get("values")
    if not isinstance(errors, dict) or not isinstance(values, dict):
        return {}, {}
    return {str(k): str(v) for k, v in errors.items()}, values
