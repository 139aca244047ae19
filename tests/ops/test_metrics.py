"""GET /metrics: who may read it, and the figures after known traffic."""

import asyncio
import os
import secrets
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures import reports

TOKEN = "metrics-" + secrets.token_hex(8)


def report(**changes) -> dict:
    """tests.fixtures.reports.report with another reporter, child and description."""
    return reports.report(
        reporter={"name": "赵老师", "unit": "东湖第一小学", "role": "teacher",
                  "phone": "13900139000"},
        child={"name": "孙小红", "age": 8, "gender": "female", "address": "幸福里小区5栋"},
        description=f"学生手臂有新伤，说是继父打的（{secrets.token_hex(4)}）",
        **changes,
    )


def samples(text: str) -> dict[tuple, float]:
    """(sample name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(figures: dict[tuple, float], name: str, **labels) -> float:
    """One sample's value (0 when absent), or the sum over samples matching `labels`."""
    return sum(
        v for (n, ls), v in figures.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )


@pytest.fixture(scope="module")
async def metered(settings, database_url, redis_url):
    """A second API on the same servers, with metrics turned on by a token."""
    from dispatch.app import create_app

    app = create_app(
        settings.model_copy(update={"hotline_metrics_token": TOKEN}),
        database_url=database_url,
        redis_url=redis_url,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def read(client) -> dict[tuple, float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_are_not_public(client, metered):
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
        off = await client.get("/metrics", headers=headers)  # the suite's app has no token
        assert off.status_code == 401
        assert "未启用" in off.json()["error"]["message"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = await metered.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["www-authenticate"] == "Bearer"


async def test_figures_after_known_traffic(metered, pump):
    await pump()  # other tests' leftovers first, so the job counts below are ours
    before = await read(metered)
    first = report()
    created = await metered.post("/api/v1/reports", json=first)
    assert created.status_code == 201
    again = await metered.post("/api/v1/reports", json=first)  # a double submission
    assert again.json()["case_id"] == created.json()["case_id"]
    bad = await metered.post("/api/v1/reports", json=report(situations=[99]))
    assert bad.status_code == 422
    mid = await read(metered)
    # The intake's job waits in the outbox until the relay moves it.
    assert value(mid, "hotline_outbox_backlog", topic="case.intake") >= 1
    assert value(mid, "hotline_outbox_oldest_age_seconds") > 0
    ran = await pump()
    after = await read(metered)

    def delta(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hotline_intake_total", channel="webform", outcome="case") == 1
    assert delta("hotline_intake_total", channel="webform", outcome="duplicate") == 1
    assert delta("hotline_intake_total", channel="webform", outcome="refused") == 1
    assert delta("hotline_triage_decisions_total") == 1
    assert delta("hotline_triage_decisions_total", not_a_case="") == 1
    route = {"route": "/api/v1/reports", "method": "POST"}
    assert delta("hotline_http_request_duration_seconds_count", **route, status="201") == 2
    assert delta("hotline_http_request_duration_seconds_count", **route, status="422") == 1
    # /metrics itself is timed by its template too, not by a raw path.
    assert value(after, "hotline_http_request_duration_seconds_count", route="/metrics") >= 2
    topics = [topic for topic, _ in ran]
    assert "case.intake" in topics
    for topic in set(topics):
        assert delta("hotline_job_duration_seconds_count", kind=topic) == topics.count(topic)
    assert delta("hotline_job_failures_total") == 0
    # Routing made referrals; the state gauges see them, the outbox is drained.
    assert value(after, "hotline_referrals") >= 1
    assert value(after, "hotline_outbox_backlog", topic="case.intake") == 0
    for deadline in ("soon", "overdue", "flagged"):
        assert ("hotline_referral_deadlines", (("deadline", deadline),)) in after
    assert any(n == "hotline_rq_queue_depth" for n, _ in after)
    for kind in ("worker", "scheduler"):
        assert ("hotline_processes", (("kind", kind),)) in after


async def test_a_failing_job_is_counted_by_kind(metered, app):
    from db.handlers import JobContext
    from dispatch.worker.jobs import run_job

    async def broken(ctx, payload):
        raise RuntimeError("partner down")

    before = await read(metered)
    context = JobContext(app.state.runtime.sessions, app.state.runtime.settings)
    with pytest.raises(RuntimeError):
        await run_job(context, {"partner.feedback": broken}, "partner.feedback", {})
    after = await read(metered)
    kind = {"kind": "partner.feedback"}
    assert value(after, "hotline_job_failures_total", **kind) - value(
        before, "hotline_job_failures_total", **kind) == 1
    assert value(after, "hotline_job_duration_seconds_count", **kind) - value(
        before, "hotline_job_duration_seconds_count", **kind) == 1


async def test_counts_of_several_processes_are_added_up(metered, tmp_path, monkeypatch):
    """Several API workers, RQ workers and the scheduler count into one folder; /metrics
    adds them up."""
    script = (
        "import sys; from db.metrics import INTAKE; "
        "INTAKE.labels('sms', 'case').inc(int(sys.argv[1]))"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (2, 3):
        command = [sys.executable, "-c", script, str(count)]
        await asyncio.to_thread(subprocess.run, command, check=True, env=env)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    figures = await read(metered)
    assert value(figures, "hotline_intake_total", channel="sms", outcome="case") == 5
    assert len(list(tmp_path.glob("counter_*.db"))) == 2


async def test_alert_rules_and_dashboard_ask_only_for_metrics_the_service_has(metered):
    import json
    import re
    from pathlib import Path

    import yaml

    response = await metered.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"],
                "gauge": [""]}
    known = {
        family.name + suffix
        for family in text_string_to_metric_families(response.text)
        for suffix in suffixes.get(family.type, [""])
    }
    deploy = Path(__file__).parents[2] / "deploy"
    rules = yaml.safe_load((deploy / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((deploy / "grafana" / "hotline-dashboard.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bhotline_[a-z_]+", expr)}
    assert len(used) >= 12
    assert used <= known, used - known


async def test_every_answer_carries_a_request_id(client):
    kept = await client.get("/healthz", headers={"X-Request-ID": "proxy-7f3a.1"})
    assert kept.headers["x-request-id"] == "proxy-7f3a.1"  # the proxy's own id, kept
    made = await client.get("/healthz", headers={"X-Request-ID": "not plain; <script>"})
    assert made.headers["x-request-id"] != "not plain; <script>"
    assert len(made.headers["x-request-id"]) == 16
    other = await client.get("/no-such-page")
    assert other.status_code == 404 and other.headers["x-request-id"] != made.headers[
        "x-request-id"]
