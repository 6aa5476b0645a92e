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
