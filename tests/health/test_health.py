"""Liveness, readiness and metrics."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest


def test_healthz(app_client_factory: Callable[[], httpx.Client]) -> None:
    assert app_client_factory().get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(app_client_factory: Callable[[], httpx.Client]) -> None:
    r = app_client_factory().get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_is_503_when_the_broker_is_unreachable(
    app_client_factory: Callable[[], httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    r = app_client_factory().get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["checks"]["broker"].startswith("unreachable")


def test_metrics_count_requests_by_route_template(
    app_client_factory: Callable[[], httpx.Client],
) -> None:
    client = app_client_factory()
    client.get("/api/v1/projects/12345")  # 401, but counted under its template
    text = client.get("/metrics").text
    assert "tandem_http_requests_total" in text
    assert 'route="/api/v1/projects/{project_id}"' in text
    assert "/api/v1/projects/12345" not in text


def test_openapi_is_served(app_client_factory: Callable[[], httpx.Client]) -> None:
    spec = app_client_factory().get("/openapi.json").json()
    assert "/api/v1/projects/{project_id}/tasks/next" in spec["paths"]
