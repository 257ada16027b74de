"""Who may call the service: CDS client JWT verification (CH-24, CH-25, CH-06).

`ClientJwtVerifier.verify(authorization, audience)` is the one entry point; `TrustedClient` and
`load_trusted_clients` configure it, `JwksCache` finds keys (the only network I/O here) and a
`ReplayStore` remembers `jti`s.
"""

from cds.auth.client_jwt import ClientJwtVerifier, VerifiedClient
from cds.auth.jwks import JwksCache
from cds.auth.keys import ALLOWED_ALGS
from cds.auth.replay import MemoryReplayStore, ReplayStore
from cds.auth.trust import TrustedClient, load_trusted_clients

__all__ = [
    "ALLOWED_ALGS",
    "ClientJwtVerifier",
    "JwksCache",
    "MemoryReplayStore",
    "ReplayStore",
    "TrustedClient",
    "VerifiedClient",
    "load_trusted_clients",
]
