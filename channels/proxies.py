"""The client's real address behind reverse proxies, and the one place that decides it.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only from the
proxies the deployment names (`HOTLINE_TRUSTED_PROXIES`, CIDRs). Walking the header from
the right, each hop a trusted proxy added is skipped; the first address not ours is the
client (what a client writes to the left of it is ignored). With no proxies configured the
connecting address is the client. `TrustedProxies` puts that address (and the scheme the
proxy saw, `X-Forwarded-Proto`) into the request's scope before anything reads it, so
`channels.web.client_ip`, the audit log and the login and intake limits see the same
address.
"""

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import ASGIApp, Receive, Scope, Send

Network = IPv4Network | IPv6Network


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def _hops(headers: Iterable[str]) -> list[str]:
    return [hop.strip() for value in headers for hop in value.split(",") if hop.strip()]


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str | None:
    """The rightmost address in `peer` + X-Forwarded-For that is not a trusted proxy.

    A hop that is not an IP address ends the walk at the last trusted hop before it: it
    was written by someone we do not trust, and it is no address to record.
    """
    if peer is None or not trusted or not _is_trusted(peer, trusted):
        return peer
    client = peer
    for hop in reversed(_hops(forwarded_for)):
        try:
            ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not _is_trusted(hop, trusted):
            return hop
    return client


class TrustedProxies:
    """ASGI middleware: the scope's client and scheme as the trusted proxies saw them."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            peer = scope.get("client")
            if peer and _is_trusted(peer[0], self.trusted):
                headers = scope["headers"]
                forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
                scope = dict(scope)
                scope["client"] = (client_address(peer[0], forwarded, self.trusted), 0)
                proto = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto"]
                scheme = proto[-1].split(",")[-1].strip().lower() if proto else ""
                if scheme in ("http", "https"):
                    ws = scope["type"] == "websocket"
                    scope["scheme"] = {"http": "ws", "https": "wss"}[scheme] if ws else scheme
        await self.app(scope, receive, send)
