"""Job ids past BIGINT are a 404 or 422 with an error code, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import Actor
from tests.rawjson import BIGINT_MAX


@pytest.mark.parametrize("job_id", [str(BIGINT_MAX + 1), str(2**70), "²", "-1"])
def test_out_of_range_job_ids_are_404_or_422(admin: Actor, job_id: str) -> None:
    r = admin.client.get(f"/api/v1/jobs/{job_id}")
    assert r.status_code in (404, 422), r.text
    assert r.json()["error"] in ("not_found", "validation_error")
