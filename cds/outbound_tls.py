"""Which certificate authorities the service trusts when it calls out over TLS: the EHR's FHIR
servers, JWKS URLs and the SMART authorization server.

httpx trusts certifi's public CAs — not the operating system's store — unless `SSL_CERT_FILE` (a
PEM bundle) or, when that is unset, `SSL_CERT_DIR` (a directory hashed by `openssl rehash`) names
others: how a hospital trusts its internal CA (deploy/README.md). httpx reads them each time a
client is made, inside the server's start-up, so a typo there was a traceback in the log and no
service. `check_outbound_tls` reads them first, as httpx will, and says what is wrong in one line.
"""

from __future__ import annotations

import os
import ssl

from cds.errors import ConfigError

_USE = "as the CA certificates for outbound TLS (FHIR servers, JWKS URLs, SMART)"


def check_outbound_tls() -> None:
    """ConfigError naming the variable when httpx could not build its TLS context from it."""
    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    if cafile:  # httpx's order: the file, else the directory (httpx/_config.py)
        try:
            ssl.create_default_context(cafile=cafile)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: not PEM certificates
            raise ConfigError(f"SSL_CERT_FILE: cannot use {cafile!r} {_USE}: {_why(exc)}") from None
    elif capath and not os.path.isdir(capath):
        # OpenSSL looks a directory up only when a certificate is checked: a wrong one would
        # fail every FHIR read later, each as "certificate verify failed".
        raise ConfigError(f"SSL_CERT_DIR: cannot use {capath!r} {_USE}: not a directory")


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return "no PEM certificate in it"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()  # "no such file or directory", "is a directory"
    return type(exc).__name__
