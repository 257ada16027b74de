"""Server-rendered HTML shell and the error pages (readable with JavaScript off).

Every dynamic value goes through `html.escape`; no inline script or style, so the page works under a
strict Content-Security-Policy (`default-src 'self'`). Assets are served by the app (no CDN).
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

from cds.app.errors import SmartError
from cds.store.app_sessions import AppSessionRow

CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'; form-action 'self'"
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · cto-cds</title>"
        '<link rel="stylesheet" href="/app/static/app.css">'
        '<script src="/app/static/app.js" defer></script>'
        f'</head><body><main id="main">{body}</main></body></html>'
    )


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(layout(title, body), status_code=status, headers=HEADERS)


def relaunch_url(iss: str | None) -> str | None:
    return None if iss is None else "/app/launch?" + urlencode({"iss": iss})


def relaunch_iss(row: AppSessionRow | None) -> str | None:
    """The iss of a "Launch again" link for this session: standalone launches only.

    The link is a standalone launch, whose patient the authorization server picks (a picker, or
    the demo's fixed patient): after an EHR launch it opened whichever patient that was, not the
    one whose chart the clinician came from. Those sessions say to open the app from the chart.
    """
    if row is None or row.context.get("ehr_launch", True):
        return None
    return row.iss


def error_page(error: SmartError, iss: str | None = None) -> HTMLResponse:
    body = f'<h1>{escape(error.title)}</h1><p class="detail">{escape(error.detail)}</p>'
    target = relaunch_url(iss) if error.relaunch else None
    if error.relaunch:
        if target is not None:
            body += f'<p><a class="button" href="{escape(target)}">Launch again</a></p>'
        else:
            body += "<p>Open the app again from the patient's chart in the EHR.</p>"
    return page(error.title, f'<section class="error" role="alert">{body}</section>', error.status)
