"""Auth, organisations and routing; the token control route and its Python API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import TOKEN, Api

SECRET = "s3cret-drill-token-91c4"


def _tokens(method: str, server: SimulatorServer, **kwargs: Any) -> requests.Response:
    response = requests.request(method, server.control_url + "/tokens", timeout=10, **kwargs)
    assert SECRET not in response.text, "a token must never be echoed"
    return response


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing-header"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="unknown-token"),
        pytest.param({"Authorization": "Bearer "}, id="empty-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
    ],
)
@pytest.mark.parametrize("path", ["/videos", "/videos/790", "/analyses/1247/summary"])
def test_bad_or_missing_token_is_401(server: SimulatorServer, headers: dict[str, str], path: str) -> None:
    response = requests.get(server.base_url + path, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"message": "Unauthenticated."}


def test_bearer_scheme_is_case_insensitive(server: SimulatorServer) -> None:
    response = requests.get(server.base_url + "/videos", headers={"Authorization": f"bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200


def test_other_organisation_sees_404(make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(tokens={"token-a": "org-a", "token-b": "org-b"})
    alice, bob = Api(server, "token-a"), Api(server, "token-b")
    video = alice.create_video(title="Alice's match")
    analysis = alice.create_analysis(video["id"])
    expected = {"message": f"No query results for model [App\\Models\\Video] {video['id']}"}
    for method in ("GET", "PUT", "DELETE"):
        response = bob(method, f"/videos/{video['id']}", json={})
        assert (response.status_code, response.json()) == (404, expected), method
    assert bob("POST", f"/videos/{video['id']}/analysis", json={}).status_code == 404
    response = bob("GET", f"/analyses/{analysis['id']}")
    assert response.status_code == 404
    assert response.json() == {"message": f"No query results for model [App\\Models\\Analysis] {analysis['id']}"}
    assert bob("GET", "/videos").json()["data"] == []
    assert [v["id"] for v in alice("GET", "/videos").json()["data"]] == [video["id"]]
    assert alice.video(video["id"])["title"] == "Alice's match"


@pytest.mark.parametrize(
    ("body", "organisation"),
    [
        pytest.param({"token": SECRET}, "org-1", id="default-organisation"),
        pytest.param({"token": SECRET, "organisation": "org-drill"}, "org-drill", id="named-organisation"),
    ],
)
def test_token_control_adds_then_revokes(server: SimulatorServer, body: dict[str, str], organisation: str) -> None:
    client = Api(server, SECRET)
    try:
        assert client("GET", "/videos").status_code == 401
        response = _tokens("POST", server, json=body)
        assert response.status_code == 201
        assert response.json() == {"organisation": organisation, "tokens": 2}  # test-token and the new one
        assert client("GET", "/videos").status_code == 200
        video = client.create_video()
        assert server.simulator.requests[-1].token_org == organisation
        assert _tokens("DELETE", server, json={"token": SECRET}).status_code == 204
        response = client("GET", f"/videos/{video['id']}")
        assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})
        assert server.simulator.config.tokens == {TOKEN: "org-1"}
    finally:
        client.close()


def test_adding_a_known_token_remaps_its_organisation(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    response = _tokens("POST", server, json={"token": SECRET, "organisation": "org-2"})
    assert response.json() == {"organisation": "org-2", "tokens": 2}
    client = Api(server, SECRET)
    try:
        assert client("GET", f"/videos/{video['id']}").status_code == 404  # org-2 does not own it
        response = _tokens("POST", server, json={"token": SECRET, "organisation": "org-1"})
        assert (response.status_code, response.json()) == (201, {"organisation": "org-1", "tokens": 2})
        assert client.video(video["id"])["id"] == video["id"]
    finally:
        client.close()


@pytest.mark.parametrize("history", ["never-added", "already-revoked"])
def test_revoking_a_token_that_is_not_accepted_is_404(server: SimulatorServer, history: str) -> None:
    if history == "already-revoked":
        server.simulator.add_token(SECRET)
        assert server.simulator.revoke_token(SECRET) is True
    response = _tokens("DELETE", server, json={"token": SECRET})
    assert response.status_code == 404
    assert set(response.json()) == {"message"}
    assert server.simulator.config.tokens == {TOKEN: "org-1"}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "token", id="token-missing"),
        pytest.param({"token": ""}, "token", id="token-empty"),
        pytest.param({"token": "   "}, "token", id="token-blank"),
        pytest.param({"token": 12345}, "token", id="token-not-a-string"),
        pytest.param({"token": None}, "token", id="token-null"),
        pytest.param({"token": SECRET, "colour": "red"}, "colour", id="unknown-field"),
        pytest.param([SECRET], "body", id="body-not-an-object"),
    ],
)
def test_bad_token_bodies_are_400_naming_the_field(server: SimulatorServer, method: str, body: Any, field: str) -> None:
    response = _tokens(method, server, json=body)
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert server.simulator.config.tokens == {TOKEN: "org-1"}


@pytest.mark.parametrize(
    "organisation",
    [pytest.param("", id="empty"), pytest.param(7, id="not-a-string"), pytest.param(None, id="null")],
)
def test_bad_organisation_is_400_naming_the_field(server: SimulatorServer, organisation: Any) -> None:
    response = _tokens("POST", server, json={"token": SECRET, "organisation": organisation})
    assert response.status_code == 400
    assert "organisation" in response.json()["message"]
    assert SECRET not in server.simulator.config.tokens


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_malformed_token_body_is_400(server: SimulatorServer, method: str) -> None:
    response = _tokens(method, server, data=b'{"token": "' + SECRET.encode())
    assert (response.status_code, response.json()) == (400, {"message": "Malformed JSON body."})


def test_token_python_api(server: SimulatorServer) -> None:
    simulator = server.simulator
    simulator.add_token(SECRET, organisation="org-3")
    assert simulator.config.tokens == {TOKEN: "org-1", SECRET: "org-3"}
    client = Api(server, SECRET)
    try:
        assert client("GET", "/videos").status_code == 200
        assert simulator.revoke_token(SECRET) is True
        assert simulator.revoke_token(SECRET) is False
        assert client("GET", "/videos").status_code == 401
    finally:
        client.close()
    with pytest.raises(ValueError, match="token"):
        simulator.add_token("")
    with pytest.raises(ValueError, match="organisation"):
        simulator.add_token(SECRET, organisation="")
    assert simulator.config.tokens == {TOKEN: "org-1"}


def test_unknown_route_and_wrong_method(api: Api) -> None:
    response = api("GET", "/xyz")
    assert response.status_code == 404
    assert response.json() == {"message": "The route api/v1/xyz could not be found."}
    # Laravel resolves routes before authentication: no token needed to get the 404.
    assert requests.get(api.server.base_url + "/nope", timeout=10).status_code == 404
    response = api("PATCH", "/videos")
    assert response.status_code == 405
    assert response.json()["message"].startswith("The PATCH method is not supported for route api/v1/videos.")


def test_non_integer_ids_are_404(api: Api) -> None:
    for path in ("/videos/abc", "/videos/-1", "/analyses/1.5", "/analyses/x/summary"):
        response = api("GET", path)
        assert response.status_code == 404, path
        assert response.json()["message"].startswith("No query results for model"), path
