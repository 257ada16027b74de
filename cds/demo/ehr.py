"""An EHR-like CDS Hooks client for tests and the demo: keys, a JWKS endpoint, signed JWTs, hook requests.

- `EhrKeys.generate("ES384" | "RS384", kid=...)`: a private key and its public JWK (CH-24).
- `JwksServer(keys)`: `{"keys": [...]}` at `/jwks.json` on a loopback port (a thread); `with server as
  url:` yields the URL; assigning `server.jwks` rotates keys; `server.requests` counts GETs.
- `sign_client_jwt(keys, iss, aud, ...)`: the client JWT of CH-24 (`alg`, `kid`, `typ: JWT`, optional
  `jku`; `iss`, `aud`, `exp`, `iat`, `jti`); `extra_headers` / `extra_claims` override, `None` removes.
- `hook_request(hook, ...)`, `order_select_request(...)` / `order_sign_request(...)`: CH-07 request
  bodies with a draft CTO-PCI order, built (CPT 92943, SNOMED bodySite; R4 `ServiceRequest` or STU3
  `ProcedureRequest`, CH-09) or given (`order=`: e.g. a cohort order, sent as a draft), with an
  optional prefetch. The one builder of hook calls for the demo and every test.

Only PyJWT, cryptography and the standard library: nothing here is imported by the service.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypedDict, Unpack

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, get_default_algorithms

from cds.demo.fhir_json import (
    CPT,
    CTO_PCI_CPT,
    CTO_PCI_DISPLAY,
    ICD10CM,
    RCA,
    SNOMED,
    Resource,
    Site,
    concept,
    ref,
)

Alg = Literal["ES384", "RS384", "ES256", "RS256", "PS384"]
FhirVersion = Literal["R4", "STU3"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}


@dataclass(frozen=True)
class EhrKeys:
    """A CDS client's signing key: `alg`, `kid`, the private key and the public JWK to publish."""

    alg: str
    kid: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]

    @classmethod
    def generate(cls, alg: Alg = "ES384", kid: str | None = None) -> EhrKeys:
        """A fresh key pair (EC P-256/P-384, or RSA 2048) with `kid` (a UUID if not given)."""
        kid = kid or str(uuid.uuid4())
        private: PrivateKey
        if alg in _CURVES:
            private = ec.generate_private_key(_CURVES[alg])
            jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk.update(kid=kid, alg=alg, use="sig")
        return cls(alg=alg, kid=kid, private_key=private, public_jwk=dict(jwk))

    def jwks(self) -> dict[str, Any]:
        """`{"keys": [public JWK]}`."""
        return jwks_of(self)

    def public_pem(self) -> bytes:
        """The public key as PEM (what an HS256 confusion attack would use as the HMAC secret)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def jwks_of(*keys: EhrKeys) -> dict[str, Any]:
    """A JWKS holding the public JWKs of `keys`."""
    return {"keys": [dict(k.public_jwk) for k in keys]}


class JwksServer:
    """A JWKS at `http://127.0.0.1:<free port>/jwks.json`, served by a thread while in `with`."""

    def __init__(self, jwks: Mapping[str, Any] | EhrKeys | Sequence[EhrKeys]) -> None:
        self.jwks = jwks
        self.requests = 0
        self.url = ""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def jwks(self) -> dict[str, Any]:
        """The document served; assign a JWKS, one `EhrKeys` or a list of them (key rotation)."""
        return self._jwks

    @jwks.setter
    def jwks(self, value: Mapping[str, Any] | EhrKeys | Sequence[EhrKeys]) -> None:
        if isinstance(value, EhrKeys):
            self._jwks = jwks_of(value)
        elif isinstance(value, Mapping):
            self._jwks = dict(value)
        else:
            self._jwks = jwks_of(*value)

    def __enter__(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests += 1
                if self.path != "/jwks.json":
                    self.send_error(404)
                    return
                body = json.dumps(owner.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"
        return self.url

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _merge(base: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = {**base, **(extra or {})}
    return {k: v for k, v in merged.items() if v is not None}


def sign_client_jwt(
    keys: EhrKeys,
    iss: str,
    aud: str | list[str],
    *,
    jti: str | None = None,
    lifetime: int = 300,
    extra_headers: Mapping[str, Any] | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    jku: str | None = None,
    now: float | None = None,
) -> str:
    """A CDS client JWT (CH-24) signed with `keys` (always with `keys.alg`, whatever the header says).

    `extra_headers` / `extra_claims` are merged last; a `None` value removes the member (e.g.
    `extra_claims={"jti": None}`), so tests can build every malformed variant.
    """
    issued = int(time.time() if now is None else now)
    header = _merge({"alg": keys.alg, "typ": "JWT", "kid": keys.kid, "jku": jku}, extra_headers)
    claims = _merge(
        {
            "iss": iss,
            "aud": aud,
            "exp": issued + lifetime,
            "iat": issued,
            "jti": jti or str(uuid.uuid4()),
        },
        extra_claims,
    )
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    algorithm = get_default_algorithms()[keys.alg]
    signature = algorithm.sign(signing_input.encode("ascii"), keys.private_key)
    return f"{signing_input}.{_b64(signature)}"


def cto_pci_order(
    *,
    order_id: str = "cto-pci-1",
    patient_id: str = "pat-1",
    performer_id: str = "dr-1",
    requester: str | None = None,
    encounter_id: str | None = None,
    site: Site = RCA,
    fhir_version: FhirVersion = "R4",
) -> Resource:
    """A draft CTO-PCI order: R4 `ServiceRequest` or STU3 `ProcedureRequest` (CH-09)."""
    r4 = fhir_version == "R4"
    order: Resource = {
        "resourceType": "ServiceRequest" if r4 else "ProcedureRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "code": concept(CPT, CTO_PCI_CPT, CTO_PCI_DISPLAY),
        "subject": ref("Patient", patient_id),
        "reasonCode": [concept(ICD10CM, "I25.82", "Chronic total occlusion of coronary artery")],
        "bodySite": [concept(SNOMED, site.code, site.display)],
    }
    # STU3: a single performer, `context` for the encounter, `requester.agent`.
    performer = ref("Practitioner", performer_id)
    order["performer"] = [performer] if r4 else performer
    if encounter_id:
        order["encounter" if r4 else "context"] = ref("Encounter", encounter_id)
    if requester:
        order["requester"] = {"reference": requester} if r4 else {"agent": {"reference": requester}}
    return order


class OrderRequest(TypedDict, total=False):
    """Arguments of the order hook builders; all optional.

    `fhir_server`, `fhir_authorization`, `prefetch`, `encounter_id`: omitted when not given (`prefetch`
    is passed through as given); `patient_id` "pat-1"; `performer_id` "dr-1"; `user_id`
    `Practitioner/<performer_id>`; `order_id` "cto-pci-1"; `site` RCA; `fhir_version` "R4";
    `hook_instance` a new UUID; `other_orders` further drafts placed in `draftOrders`. `order`: an
    existing order resource sent (as a copy with status draft) instead of a built one; then
    `user_id` defaults to its performer and `order_id`, `performer_id`, `site`, `fhir_version` and
    `encounter_id` are not used for the order.
    """

    order: Resource

    fhir_server: str | None
    fhir_authorization: Mapping[str, Any] | None
    prefetch: Mapping[str, Any] | None
    patient_id: str
    performer_id: str
    user_id: str | None
    encounter_id: str | None
    order_id: str
    site: Site
    fhir_version: FhirVersion
    hook_instance: str | None
    other_orders: Sequence[Resource]


def order_select_request(**args: Unpack[OrderRequest]) -> dict[str, Any]:
    """An `order-select` request (CH-07, CH-09): the CTO-PCI draft is the one selection."""
    return hook_request("order-select", **args)


def order_sign_request(**args: Unpack[OrderRequest]) -> dict[str, Any]:
    """An `order-sign` request (CH-07, CH-09): the same drafts, no `selections`."""
    return hook_request("order-sign", **args)


def _performer(order: Mapping[str, Any]) -> str | None:
    performer = order.get("performer")
    first = performer[0] if isinstance(performer, list) and performer else performer
    return first.get("reference") if isinstance(first, Mapping) else None


def hook_request(
    hook: Literal["order-select", "order-sign"], **args: Unpack[OrderRequest]
) -> dict[str, Any]:
    """A CH-07 request body for `hook` about one CTO-PCI draft order (see `OrderRequest`)."""
    patient_id = args.get("patient_id", "pat-1")
    performer_id = args.get("performer_id", "dr-1")
    encounter_id = args.get("encounter_id")
    given = args.get("order")
    if given is not None:
        order: Resource = copy.deepcopy(dict(given))
        order["status"] = "draft"
        user = args.get("user_id") or _performer(order) or f"Practitioner/{performer_id}"
    else:
        user = args.get("user_id") or f"Practitioner/{performer_id}"
        order = cto_pci_order(
            order_id=args.get("order_id", "cto-pci-1"),
            patient_id=patient_id,
            performer_id=performer_id,
            requester=user,
            encounter_id=encounter_id,
            site=args.get("site", RCA),
            fhir_version=args.get("fhir_version", "R4"),
        )
    context: dict[str, Any] = {"userId": user, "patientId": patient_id}
    if encounter_id:
        context["encounterId"] = encounter_id
    if hook == "order-select":
        context["selections"] = [f"{order['resourceType']}/{order['id']}"]
    context["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": o} for o in (order, *args.get("other_orders", ()))],
    }
    fhir_server = args.get("fhir_server")
    fhir_authorization = args.get("fhir_authorization")
    if fhir_authorization is not None and fhir_server is None:
        raise ValueError("fhirAuthorization requires fhirServer (CH-20)")
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": args.get("hook_instance") or str(uuid.uuid4()),
        "context": context,
    }
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    if fhir_authorization is not None:
        body["fhirAuthorization"] = dict(fhir_authorization)
    prefetch = args.get("prefetch")
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body
