"""The health check and the privacy policy page."""
from storage.db import Database


def test_health_is_ok_with_a_database_that_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["database"] == "ok"


def test_health_is_503_when_the_database_does_not_answer(app, client):
    services = app.extensions["dxdesk"]
    answering = services.db
    services.db = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2")  # nothing listens there
    try:
        response = client.get("/healthz")
    finally:
        services.db.dispose()
        services.db = answering
    assert response.status_code == 503 and response.json["database"] == "unreachable"


def test_the_privacy_policy_names_the_purposes_and_its_version(client, services):
    html = client.get("/privacy").get_data(as_text=True)
    assert "利用目的" in html and services.config.privacy_policy_version in html


def test_the_front_page_leads_to_the_simulator_without_a_line_channel(client):
    assert client.get("/").headers["Location"].endswith("/simulator")


def _event(s, n, received_at, status="pending"):
    from storage.models import InboxEvent
    s.add(InboxEvent(event_key=f"e{n}", user_key=f"U{n}", source="line", payload={"type": "message"},
                     received_at=received_at, status=status, attempts=0))


def test_health_reports_the_backlogs_and_is_503_once_the_oldest_unprocessed_event_waits_too_long(services, client):
    from datetime import timedelta

    from storage.outbound import queue_messages
    now = services.clock.now()
    services.stop()  # nothing processes the events put in below
    with services.db.unit_of_work() as s:
        _event(s, 1, now - timedelta(seconds=30))
        _event(s, 2, now - timedelta(seconds=10))
        _event(s, 3, now - timedelta(hours=5), status="failed")  # set aside: counted apart, not "behind"
        queue_messages(s, "line", "U1", [{"type": "text", "text": "x"}], now - timedelta(hours=1))
        s.commit()
    body = client.get("/healthz")
    assert body.status_code == 200 and body.json["status"] == "ok"
    assert body.json["backlog"]["inbox"] == {"count": 2, "oldest_age_seconds": 30.0}
    assert body.json["backlog"]["outbound"]["count"] == 1  # LINE being slow is reported, and does not fail the check
    assert body.json["backlog"]["failed"]["inbox"] == 1
    services.clock.advance(minutes=2)
    late = client.get("/healthz")
    assert late.status_code == 503 and late.json["status"] == "behind" and late.json["database"] == "ok"
    assert late.json["backlog"]["inbox"]["oldest_age_seconds"] == 150.0
