"""Base URLs, one way: parse, normalise, and decide whether a URL lies under an allowed base.

Three places decide where the service may send a request (and with it a token): the FHIR allowlist
(`Settings.allowed_fhir_servers`, the request's `fhirServer`), the FHIR source's `next` links
(`cds.sources.fhir.FhirBase`) and the JWKS / `jku` allowlist (`cds.auth.trust`). They share this
module so that they cannot disagree about what "under" means.

The rules are strict because the URLs come from requests (docs/spec/cds-hooks-smart.md CH-12,
CH-25): a URL is refused when it is longer than 2048 characters, has whitespace, control or
non-ASCII characters, a backslash, user-info, a fragment, a bad port, a `.`/`..` path segment, or a
percent-encoded `/`, `\\`, `.` or control byte (`%2F`, `%5C`, `%2E`, `%00`...), since a server may
decode those into a path outside the base. A base URL has no query either; a URL checked against a
base may (FHIR `next` links do). Scheme and host compare case-insensitively and the default port is
made explicit; the path is a prefix on a `/` boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL_CHARS = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Percent-escapes a server may decode into a path separator, a dot segment or a control character.
_RISKY_ESCAPE = re.compile(r"%(2[eEfF]|5[cC]|[01][0-9a-fA-F]|7[fF])")


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?")


class UrlError(ValueError):
    """Why a URL is refused; the message never repeats the URL (it may hold a patient id)."""


def masked(url: str) -> str:
    """`url` as an error message may repeat it: user-info, query and fragment become `***`.

    The user-info is everything up to the LAST `@`: a password with an unescaped `@` (or `/`, `?`)
    is split elsewhere by URL parsers, and `u:***@rest-of-the-password@host` leaked half of it. An
    `@` further on (in the path or query) hides more than the user-info, never less."""
    scheme = _SCHEME.match(url)
    head = scheme.group(0) if scheme else ""
    rest = url[len(head) :]
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    for mark in "?#":
        before, found, _ = rest.partition(mark)
        if found:
            rest = f"{before}{mark}***"
    return head + rest


@dataclass(frozen=True)
class ParsedUrl:
    """An absolute http(s) URL that passed the checks above; host lower-case, port explicit."""

    scheme: str
    host: str
    port: int
    path: str
    """Without a trailing `/` (so the root is "")."""
    query: str
    netloc: str
    """As written (case kept), for display and for building request URLs."""

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    @property
    def url(self) -> str:
        """The normalised base: scheme, netloc as written and path, no trailing slash."""
        return f"{self.scheme}://{self.netloc}{self.path}"

    def contains(self, other: ParsedUrl) -> bool:
        """Same origin, and `other`'s path is this path or below it on a `/` boundary."""
        return other.origin == self.origin and (
            other.path == self.path or other.path.startswith(self.path + "/")
        )


def parse_url(url: object, *, base: bool = True, https_only: bool = False) -> ParsedUrl:
    """Parse `url`; `base` refuses a query too; `https_only` allows http only for loopback hosts.

    Raises:
        UrlError: the first rule the URL breaks, in words an integration engineer can act on.
    """
    if not isinstance(url, str) or not url:
        raise UrlError("must be a non-empty string")
    if len(url) > MAX_URL_CHARS:
        raise UrlError(f"is longer than {MAX_URL_CHARS} characters")
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise UrlError("has whitespace, control or non-ASCII characters")
    if "\\" in url:
        raise UrlError("has a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlError("is not a URL (bad host or port)") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UrlError("must be an absolute http(s) URL")
    if https_only and parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise UrlError("must be https (http only for loopback hosts)")
    if parts.username is not None or parts.password is not None:
        raise UrlError("has user-info (user@host)")
    if parts.fragment or "#" in url:
        raise UrlError("has a fragment (#...)")
    if base and (parts.query or "?" in url):
        raise UrlError("has a query (?...)")
    _check_path(parts)
    return ParsedUrl(
        scheme=parts.scheme,
        host=parts.hostname.lower(),
        port=port or DEFAULT_PORTS[parts.scheme],
        path=parts.path.rstrip("/"),
        query=parts.query,
        netloc=parts.netloc,
    )


def _check_path(parts: SplitResult) -> None:
    if _RISKY_ESCAPE.search(parts.path):
        raise UrlError("has a percent-encoded slash, backslash, dot or control character")
    segments = parts.path.split("/")
    if {".", ".."} & set(segments):
        raise UrlError("has a '.' or '..' path segment")


def base_url(url: object, *, https_only: bool = False) -> str:
    """The normalised text of a base URL (no trailing slash); UrlError when it is refused."""
    return parse_url(url, https_only=https_only).url


def is_under(
    base: str | ParsedUrl, url: str, *, query: bool = True, https_only: bool = False
) -> bool:
    """True when `url` passes the checks (a query only if `query`) and lies at or below `base`."""
    try:
        allowed = base if isinstance(base, ParsedUrl) else parse_url(base, https_only=https_only)
        target = parse_url(url, base=not query, https_only=https_only)
    except UrlError:
        return False
    return allowed.contains(target)
