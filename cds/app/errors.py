"""What can go wrong in a SMART launch, as a page the clinician can read (never a stack trace).

Each refusal has an HTTP status, a one-line title, a detail naming the field and value at fault,
and whether relaunching can help (an expired session can; an `iss` off the allowlist cannot).
No token or patient data ever goes into a message.
"""

from __future__ import annotations


class SmartError(Exception):
    def __init__(self, status: int, title: str, detail: str, *, relaunch: bool = False) -> None:
        super().__init__(f"{title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.relaunch = relaunch


def not_allowed(iss: str) -> SmartError:
    return SmartError(
        400,
        "FHIR server not allowed",
        f"iss {iss!r} is not one of CTO_CDS_ALLOWED_FHIR_SERVERS; it was not contacted. "
        "The app cannot be used from this EHR until the cto-cds administrator allows its FHIR "
        "server",
    )


def expired(what: str) -> SmartError:
    return SmartError(
        401, "Session expired", f"{what}; launch the app again from the EHR", relaunch=True
    )
