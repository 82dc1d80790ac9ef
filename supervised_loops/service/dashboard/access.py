"""Who may see the dashboard and who may steer the tree from it.

The rules, each enforced by `Access.check` before any handler runs:

* The dashboard binds to loopback unless told otherwise. A bind to any
  other address needs a token, and then every request must carry it
  (``401`` without it).
* Control (``POST /api/control``) is served only when enabled, which needs a
  token; a control request must carry it in an ``Authorization: Bearer``
  header (``401`` without it). A header, unlike a cookie, is never sent by
  the browser on another site's behalf, so no page elsewhere can forge one.
* Reads accept the token from that header, from the ``token`` query
  parameter (how a person opens the page) or from the ``HttpOnly``,
  ``SameSite=Strict`` cookie the page sets from it.
* A loopback bind answers only requests addressed to a loopback name
  (``Host`` header): a web page elsewhere cannot reach it through DNS
  rebinding (``403``).
* Tokens are compared with `hmac.compare_digest`, in time that does not
  depend on how much of a guess is right.
"""

from __future__ import annotations

import hmac
import ipaddress

__all__ = ["COOKIE", "Access", "is_loopback", "parse_address"]

#: The cookie the page keeps the token in.
COOKIE = "supervised_loops_token"

_LOOPBACK_NAMES = ("localhost",)


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"HOST:PORT"`` (``"[::1]:8080"`` for IPv6) into host and port.

    Port 0 lets the system choose a free port.

    Raises:
        TypeError: ``address`` is not a string.
        ValueError: it has no port, an empty host or a port outside 0..65535.
    """
    if not isinstance(address, str):
        raise TypeError(f"'dashboard' must be a 'HOST:PORT' string (got {address!r})")
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"'dashboard' must be 'HOST:PORT' with a port 0-65535 (got {address!r})")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header (``"[::1]:80"`` → ``"::1"``)."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class Access:
    """The access rules of one dashboard.

    Raises:
        TypeError: ``token`` is not a string or None.
        ValueError: a non-loopback ``host`` or ``control`` without a token,
            or an empty token.
    """

    def __init__(self, host: str, *, token: str | None, control: bool) -> None:
        if token is not None and not isinstance(token, str):
            raise TypeError(f"'dashboard_token' must be a string or None (got {token!r})")
        if token is not None and not token.strip():
            raise ValueError("'dashboard_token' must not be empty")
        self.loopback = is_loopback(host)
        if not self.loopback and token is None:
            raise ValueError(
                f"'dashboard' binds to {host!r}, which is not loopback: it needs a token"
            )
        if control and token is None:
            raise ValueError("'dashboard_control' needs a token ('dashboard_token')")
        self._token = None if token is None else token.encode()
        self.control = control

    def token_matches(self, given: str | None) -> bool:
        """Whether ``given`` is the token (always false when there is none)."""
        if self._token is None or given is None:
            return False
        return hmac.compare_digest(given.encode(), self._token)

    def check(
        self,
        *,
        host_header: str | None,
        bearer: str | None,
        query: str | None,
        cookie: str | None,
        control: bool,
    ) -> tuple[int, str] | None:
        """Refuse a request: ``(status, reason)``, or None when it may proceed."""
        if self.loopback and not is_loopback(_host_name(host_header or "")):
            return 403, "this dashboard answers only requests addressed to loopback"
        if control:
            if not self.control:
                return 403, "control is not enabled on this dashboard"
            if not self.token_matches(bearer):
                return 401, "control needs the token in an 'Authorization: Bearer' header"
            return None
        if self.loopback:
            return None
        if any(self.token_matches(given) for given in (bearer, query, cookie)):
            return None
        return 401, "this dashboard needs its token (open it with ?token=...)"
