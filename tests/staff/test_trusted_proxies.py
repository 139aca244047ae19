"""Client addresses behind reverse proxies: X-Forwarded-For is believed only from the proxies
in HOTLINE_TRUSTED_PROXIES (the rightmost hop that is not one of them is the client), so
the audit log and the login limits see real clients, and nobody can pick their address by
writing the header themselves."""

from ipaddress import ip_network

import httpx
import pytest
from limits import RateLimitItemPerMinute
from sqlalchemy import select

from channels.proxies import client_address
from db.models import AuditLog
from dispatch.staff import login_limits

PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # From a trusted proxy: the address it saw connect.
        ("10.0.0.5", ["203.0.113.9"], "203.0.113.9"),
        # A client's own header to the left of the real hop is ignored.
        ("10.0.0.5", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),
        # Two proxies of ours: both skipped.
        ("10.0.0.5", ["203.0.113.9, 10.1.2.3"], "203.0.113.9"),
        ("10.0.0.5", ["203.0.113.9", "10.1.2.3"], "203.0.113.9"),  # header given twice
        ("10.0.0.5", ["198.51.100.1, 2001:db8::7"], "198.51.100.1"),
        # Not from a proxy of ours: the header is ignored.
        ("198.51.100.4", ["10.0.0.9"], "198.51.100.4"),
        # Nothing forwarded, garbage, or all hops ours.
        ("10.0.0.5", [], "10.0.0.5"),
        ("10.0.0.5", ["not-an-ip"], "10.0.0.5"),
        ("10.0.0.5", ["203.0.113.9, junk, 10.2.2.2"], "10.2.2.2"),
        ("10.0.0.5", ["10.3.3.3"], "10.3.3.3"),
        (None, ["203.0.113.9"], None),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(peer, forwarded, expected):
    assert client_address(peer, forwarded, PROXIES) == expected


def test_with_no_proxies_configured_the_header_is_nobodys_word():
    assert client_address("10.0.0.5", ["203.0.113.9"], ()) == "10.0.0.5"


@pytest.fixture(scope="module")
async def proxied_app(settings, database_url, redis_url):
    from dispatch.app import create_app

    behind = settings.model_copy(update={"hotline_trusted_proxies": PROXIES})
    application = create_app(behind, database_url=database_url, redis_url=redis_url)
    async with application.router.lifespan_context(application):
        yield application


def _client(app, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 1))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _failed_login_ip(app, sessions, peer: str, forwarded: str) -> str | None:
    name = f"nobody_{peer}_{forwarded}"[:60]
    async with _client(app, peer) as c:
        answer = await c.post(
            "/api/v1/auth/token",
            data={"username": name, "password": "x"},
            headers={"X-Forwarded-For": forwarded},
        )
    assert answer.status_code == 401
    async with sessions() as session:
        row = (
            await session.execute(
                select(AuditLog)
                .where(AuditLog.action == "auth.login_failed")
                .order_by(AuditLog.id.desc())
                .limit(1)
            )
        ).scalar_one()
    return row.ip


async def test_the_audit_log_records_the_client_behind_a_trusted_proxy(proxied_app, sessions):
    ip = await _failed_login_ip(proxied_app, sessions, "10.0.0.5", "6.6.6.6, 203.0.113.41")
    assert ip == "203.0.113.41"


async def test_a_forged_header_changes_nothing(app, proxied_app, sessions):
    # The default deployment trusts no proxy; a proxied one not this sender.
    assert await _failed_login_ip(app, sessions, "10.0.0.5", "203.0.113.42") == "10.0.0.5"
    ip = await _failed_login_ip(proxied_app, sessions, "198.51.100.61", "203.0.113.43")
    assert ip == "198.51.100.61"


async def test_clients_behind_one_proxy_have_limits_of_their_own(proxied_app, monkeypatch):
    """Behind the proxy every client shares its address: one guesser must not use up
    everyone's per-address limit."""
    monkeypatch.setattr(login_limits, "ADDRESS_LIMITS", (RateLimitItemPerMinute(3),))
    async with _client(proxied_app, "10.0.0.5") as c:

        async def attempt(client_ip: str) -> int:
            answer = await c.post(
                "/api/v1/auth/token",
                data={"username": f"nobody_{client_ip}", "password": "x"},
                headers={"X-Forwarded-For": client_ip},
            )
            return answer.status_code

        assert [await attempt("203.0.113.50") for _ in range(4)] == [401, 401, 401, 429]
        assert await attempt("203.0.113.51") == 401


async def test_the_scheme_the_proxy_saw_is_the_requests(proxied_app):
    """A console cookie is Secure when the proxy says the browser used https."""
    async with _client(proxied_app, "10.0.0.5") as c:
        page = await c.get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert "secure" in page.headers["set-cookie"].lower()
