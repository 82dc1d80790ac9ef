"""The dashboard's access rules, each against a real server on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from supervised_loops import Supervisor, loop
from supervised_loops.messages import State
from supervised_loops.service.dashboard import Dashboard, access

TOKEN = "s3cret-token"
ENDPOINTS = ("/", "/static/dashboard.js", "/api/state", "/api/traceback?path=app/tick")


def make_tree() -> Supervisor:
    @loop(seconds=0.05)
    async def tick() -> None:
        pass

    return Supervisor(tick, name="app")


@pytest.fixture
async def tree() -> AsyncIterator[Supervisor]:
    root = make_tree()
    await root.start()
    yield root
    await root.stop()


async def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    **kwargs: object,
) -> tuple[int, str, aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession(cookies=cookies) as session,
        session.request(method, url, headers=headers, **kwargs) as response,  # type: ignore[arg-type]
    ):
        if response.content_type == "text/event-stream":
            return response.status, "", response
        return response.status, await response.text(), response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_loopback_without_token_serves_the_page_and_data_with_protective_headers(
    tree: Supervisor,
) -> None:
    async with Dashboard(tree, "127.0.0.1:0") as dashboard:
        status, body, response = await fetch(dashboard.url)
        assert status == 200
        assert "<title>" in body
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        status, body, _ = await fetch(dashboard.url + "api/state")
        assert status == 200
        assert '"root": "app"' in body


async def test_a_loopback_bind_refuses_requests_addressed_to_another_host_name(
    tree: Supervisor,
) -> None:
    # DNS rebinding: a page elsewhere whose name now points at 127.0.0.1.
    async with Dashboard(tree, "127.0.0.1:0") as dashboard:
        for path in ENDPOINTS:
            status, _, _ = await fetch(
                dashboard.url + path.lstrip("/"), headers={"Host": "evil.example:80"}
            )
            assert status == 403, path


def test_a_non_loopback_bind_without_token_is_refused_before_anything_is_bound() -> None:
    with pytest.raises(ValueError, match=r"'0\.0\.0\.0', which is not loopback: it needs a token"):
        Dashboard(make_tree(), "0.0.0.0:0")


def test_control_without_token_is_refused() -> None:
    with pytest.raises(ValueError, match="'dashboard_control' needs a token"):
        Dashboard(make_tree(), "127.0.0.1:0", control=True)


def test_a_tree_that_is_not_a_supervisor_or_a_bad_interval_is_refused() -> None:
    with pytest.raises(TypeError, match=r"'tree' must be a Supervisor \(got 'app'\)"):
        Dashboard("app", "127.0.0.1:0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'interval' must be > 0"):
        Dashboard(make_tree(), "127.0.0.1:0", interval=0)


@pytest.mark.parametrize(
    ("address", "token", "error", "match"),
    [
        ("127.0.0.1", None, ValueError, r"'dashboard' must be 'HOST:PORT'.*\(got '127\.0\.0\.1'\)"),
        (":8080", None, ValueError, "'dashboard' must be 'HOST:PORT'"),
        ("127.0.0.1:70000", None, ValueError, "port 0-65535"),
        (8080, None, TypeError, r"'dashboard' must be a 'HOST:PORT' string \(got 8080\)"),
        ("127.0.0.1:0", "  ", ValueError, "'dashboard_token' must not be empty"),
        (
            "127.0.0.1:0",
            1234,
            TypeError,
            r"'dashboard_token' must be a string or None \(got 1234\)",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_value(
    address: object, token: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Dashboard(make_tree(), address, token=token)  # type: ignore[arg-type]


async def test_a_non_loopback_bind_answers_401_to_every_endpoint_without_the_token(
    tree: Supervisor,
) -> None:
    async with Dashboard(tree, "0.0.0.0:0", token=TOKEN) as dashboard:
        port = dashboard.url.rstrip("/").rpartition(":")[2]
        base = f"http://127.0.0.1:{port}"
        for path in (*ENDPOINTS, "/api/events"):
            status, _, response = await fetch(base + path)
            assert status == 401, path
            assert response.headers["WWW-Authenticate"] == "Bearer"
            status, _, _ = await fetch(base + path, headers=bearer("wrong-token"))
            assert status == 401, path
            status, _, _ = await fetch(base + path, headers=bearer(TOKEN[:-1]))
            assert status == 401, path
        for path in ENDPOINTS:
            status, _, _ = await fetch(base + path, headers=bearer(TOKEN))
            assert status == 200, path


async def test_opening_the_page_with_the_token_sets_a_strict_cookie_that_then_suffices(
    tree: Supervisor,
) -> None:
    async with Dashboard(tree, "0.0.0.0:0", token=TOKEN) as dashboard:
        port = dashboard.url.rstrip("/").rpartition(":")[2]
        base = f"http://127.0.0.1:{port}"
        status, _, response = await fetch(base + "/?token=" + TOKEN)
        assert status == 200
        cookie = response.cookies[access.COOKIE]
        assert cookie.value == TOKEN
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        status, _, _ = await fetch(base + "/api/state", cookies={access.COOKIE: TOKEN})
        assert status == 200
        status, _, _ = await fetch(base + "/api/state", cookies={access.COOKIE: "forged"})
        assert status == 401


async def test_control_is_403_when_not_enabled_even_with_a_token(tree: Supervisor) -> None:
    async with Dashboard(tree, "127.0.0.1:0", token=TOKEN) as dashboard:
        status, _, _ = await fetch(
            dashboard.url + "api/control",
            method="POST",
            headers=bearer(TOKEN),
            json={"command": "stop", "path": "app/tick"},
        )
        assert status == 403
    assert tree.lookup("tick").status().state != State.STOPPED


async def test_control_needs_the_token_in_the_authorization_header(tree: Supervisor) -> None:
    request = {"command": "stop", "path": "app/tick"}
    async with Dashboard(tree, "127.0.0.1:0", control=True, token=TOKEN) as dashboard:
        url = dashboard.url + "api/control"
        assert (await fetch(url, method="POST", json=request))[0] == 401
        assert (await fetch(url, method="POST", json=request, headers=bearer("nope")))[0] == 401
        # Query and cookie open the page, but a browser sends those on another site's behalf.
        assert (await fetch(url + "?token=" + TOKEN, method="POST", json=request))[0] == 401
        assert (await fetch(url, method="POST", json=request, cookies={access.COOKIE: TOKEN}))[
            0
        ] == 401
        assert tree.lookup("tick").status().state != State.STOPPED
        status, body, _ = await fetch(url, method="POST", json=request, headers=bearer(TOKEN))
        assert status == 200
        assert '"ok": true' in body
        assert '"message": "Stop"' in body
    assert tree.lookup("tick").status().state == State.STOPPED


async def test_tokens_are_compared_in_constant_time(
    tree: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = access.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", recording)
    async with Dashboard(tree, "127.0.0.1:0", control=True, token=TOKEN) as dashboard:
        await fetch(
            dashboard.url + "api/control",
            method="POST",
            headers=bearer("guess"),
            json={"command": "status"},
        )
    assert compared == [(b"guess", TOKEN.encode())]


async def test_no_endpoint_runs_anything_but_the_documented_commands(tree: Supervisor) -> None:
    async with Dashboard(tree, "127.0.0.1:0", control=True, token=TOKEN) as dashboard:
        url = dashboard.url + "api/control"
        for request in (
            {"command": "exec", "path": "app/tick"},
            {"command": "stop", "path": "app/tick", "code": "import os"},
            {"command": "__class__"},
            ["stop", "app/tick"],
        ):
            status, body, _ = await fetch(url, method="POST", json=request, headers=bearer(TOKEN))
            assert status == 200
            assert '"ok": false' in body
            assert '"ValueError"' in body
        status, body, _ = await fetch(
            url, method="POST", json={"command": "events", "path": "app"}, headers=bearer(TOKEN)
        )
        assert '"ok": false' in body
        assert "GET /api/events" in body
        status, body, _ = await fetch(url, method="POST", data=b"{not json", headers=bearer(TOKEN))
        assert '"ok": false' in body
        assert "malformed JSON" in body
        status, body, _ = await fetch(
            url, method="POST", json={"command": "stop", "path": "app/nope"}, headers=bearer(TOKEN)
        )
        assert '"ok": false' in body
        assert "nope" in body
        assert tree.lookup("tick").status().state != State.STOPPED
        too_long = b'{"command": "status", "path": "' + b"x" * 70_000 + b'"}'
        assert (await fetch(url, method="POST", data=too_long, headers=bearer(TOKEN)))[0] == 413
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            assert (await fetch(url, method=method, headers=bearer(TOKEN)))[0] == 405, method
        base = dashboard.url
        for path in (
            "static/server.py",
            "static/..%2fserver.py",
            "static/%2e%2e/access.py",
            "admin",
            "api/eval",
        ):
            assert (await fetch(base + path))[0] == 404, path
        assert (await fetch(base + "api/state", method="POST"))[0] == 405


async def test_closing_the_dashboard_frees_its_port(tree: Supervisor) -> None:
    dashboard = Dashboard(tree, "127.0.0.1:0")
    await dashboard.start()
    url = dashboard.url
    await dashboard.close()
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(url)
    await asyncio.sleep(0)
