"""Opaque random tokens, stored as sha256 digests, and the CSRF tokens bound to them."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token(secret_key: str, session_token: str) -> str:
    """The CSRF token for a browser session: derivable by the server, unguessable by others."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), "sha256").hexdigest()


def csrf_matches(secret_key: str, session_token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(secret_key, session_token), presented)
