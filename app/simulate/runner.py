"""Simulated annotators at work: each a thread with its own token, speaking the real HTTP API.

Each annotator asks `POST /projects/{pid}/tasks/next`, decides from the oracle (never from
anything but the task the server showed), waits its think time (scaled), and answers with
`submit` (positions as shown: pairwise "a" is the response shown first, ranking orders are
response ids) or `skip`. It stops at 204 (nothing left for it), at its task budget, at the
run's time budget (a task in hand is then answered at once rather than left to its lease),
at `stop`, or at an error it cannot retry. Transport errors and 502/503/504 answers are
retried with backoff; a retried submit carries the same client_submission_id, so it is
stored once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from app.simulate.behaviour import AnnotatorConfig, Decision, Panel
from app.simulate.oracle import Oracle
from app.simulate.report import AnnotatorRun, RunStats, Vote

RETRIES = 5
RETRY_STATUSES = frozenset({502, 503, 504})
HTTP_TIMEOUT_S = 30.0
NO_TRUTH_REASON = "simulated annotator: no truth for this item"
SKIP_REASON = "simulated annotator: skipped"


class AnnotatorError(Exception):
    """The server answered in a way an annotator cannot go on from."""


class _Stopped(Exception):
    """The run was stopped while an annotator waited to retry."""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body)[:200]
    return str(body)[:200]


class _Annotator:
    def __init__(
        self,
        url: str,
        token: str,
        project_id: int,
        run: AnnotatorRun,
        panel: Panel,
        oracle: Oracle,
        stop: threading.Event,
        deadline: float | None,
    ) -> None:
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT_S,
        )
        self.project_id = project_id
        self.run = run
        self.panel = panel
        self.config = panel.config
        self.oracle = oracle
        self.stop = stop
        self.deadline = deadline

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        for attempt in range(RETRIES):
            try:
                response = self.client.request(method, path, json=body)
            except httpx.TransportError as exc:
                if attempt == RETRIES - 1:
                    raise AnnotatorError(
                        f"cannot reach {self.client.base_url}: {exc or type(exc).__name__}"
                    ) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code >= 400:
                        raise AnnotatorError(
                            f"{method} {path} answered {response.status_code}: {_detail(response)}"
                        )
                    return response
                if attempt == RETRIES - 1:
                    raise AnnotatorError(f"{method} {path} answered {response.status_code}")
            if self.stop.wait(0.25 * 2**attempt):
                raise _Stopped
        raise AssertionError("unreachable")

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _wait(self, seconds: float) -> None:
        """Think; cut short at the time budget or a stop."""
        if seconds <= 0:
            return
        if self.deadline is not None:
            seconds = min(seconds, self.deadline - time.monotonic())
        if seconds > 0:
            self.stop.wait(seconds)

    def work(self) -> None:
        run, config = self.run, self.config
        run.stopped = "working"
        try:
            while True:
                if self.stop.is_set():
                    run.stopped = "stopped"
                    return
                if self._out_of_time():
                    run.stopped = "time budget"
                    return
                handled = run.submitted + run.skipped + run.no_truth
                if config.max_tasks is not None and handled >= config.max_tasks:
                    run.stopped = "task budget"
                    return
                response = self._call("POST", f"/api/v1/projects/{self.project_id}/tasks/next")
                if response.status_code == 204:
                    run.stopped = "no more tasks"
                    return
                self._answer(response.json())
        except AnnotatorError as exc:
            run.error = str(exc)
            run.stopped = "error"
        except _Stopped:
            run.stopped = "stopped"
        finally:
            self.client.close()

    def _answer(self, task: dict[str, Any]) -> None:
        run = self.run
        if task["kind"] not in ("pairwise", "ranking"):
            raise AnnotatorError(
                f"simulated annotators label pairwise and ranking tasks, not {task['kind']}"
            )
        item = task["item"]
        aid = task["assignment_id"]
        facts = self.oracle.know(item)
        if facts is None:
            self._call("POST", f"/api/v1/assignments/{aid}/skip", {"reason": NO_TRUTH_REASON})
            run.no_truth += 1
            return
        shown = [int(r["id"]) for r in item["responses"]]
        key = self.oracle.key(item)
        decision = self.panel.decide(run.index, key, shown, facts)
        self._wait(decision.think_s * self.config.time_scale)
        if self.stop.is_set():
            return  # a task in hand at a stop is left to its lease, like a closed browser tab
        if decision.skip:
            self._call("POST", f"/api/v1/assignments/{aid}/skip", {"reason": SKIP_REASON})
            run.skipped += 1
            return
        self._submit(task, key, shown, facts.order, decision)

    def _submit(
        self,
        task: dict[str, Any],
        key: str,
        shown: list[int],
        truth: list[int],
        decision: Decision,
    ) -> None:
        if task["kind"] == "pairwise":
            payload: dict[str, Any] = {"choice": "a" if decision.order[0] == shown[0] else "b"}
        else:
            payload = {"order": decision.order}
        body = {
            "payload": payload,
            "time_spent_ms": round(decision.think_s * 1000),
            "client_submission_id": f"sim-{uuid.uuid4()}",
        }
        answer = self._call("POST", f"/api/v1/assignments/{task['assignment_id']}/submit", body)
        done = answer.json()
        over_quota = bool(done.get("over_quota"))
        self.run.submitted += 1
        self.run.over_quota += over_quota
        self.run.votes.append(
            Vote(
                annotator=self.run.index,
                item=key,
                shown=shown,
                order=list(decision.order),
                truth=list(truth),
                annotation_id=int(done["annotation_id"]),
                over_quota=over_quota,
                sure=decision.sure,
                think_s=decision.think_s,
                expected_accuracy=decision.expected_accuracy,
                expected_first=decision.expected_first,
            )
        )


def run_annotators(
    url: str,
    project_id: int,
    tokens: Sequence[str],
    oracle: Oracle,
    config: AnnotatorConfig,
    *,
    names: Sequence[str] | None = None,
    stop: threading.Event | None = None,
) -> RunStats:
    """Run one simulated annotator per token against the server at `url` until each stops.

    Annotator n uses tokens[n] and the n-th profile of a panel calibrated on the oracle's items
    (so the same seed and position give the same annotator). `stop` ends the run early; so
    does Ctrl-C (KeyboardInterrupt in this thread), and then the stats say `interrupted`.
    Returns what each did; see `RunStats`.
    """
    if not tokens:
        raise ValueError("run_annotators needs at least one token")
    names = list(names) if names is not None else [f"annotator {n + 1}" for n in range(len(tokens))]
    if len(names) != len(tokens):
        raise ValueError("names must name each token's annotator")
    facts = oracle.facts()
    panel = Panel.calibrate(config, facts, len(tokens))
    stop = stop or threading.Event()
    started = time.monotonic()
    deadline = None if config.max_seconds is None else started + config.max_seconds
    runs = [
        AnnotatorRun(index=n, name=names[n], expected_accuracy=panel.profiles[n].expected_accuracy)
        for n in range(len(tokens))
    ]
    workers = [
        _Annotator(url, token, project_id, run, panel, oracle, stop, deadline)
        for token, run in zip(tokens, runs, strict=True)
    ]
    threads = [
        threading.Thread(target=w.work, name=f"simulated-annotator-{n}", daemon=True)
        for n, w in enumerate(workers)
    ]
    for t in threads:
        t.start()
    interrupted = False
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - started
    expected = panel.expected(facts)
    return RunStats(project_id, config.target, expected, runs, elapsed, interrupted)
