"""HealthChain (PyPI `healthchain`) serving a fixed card: the comparison bench/load.py runs beside
the service. It runs only in bench/.venv-healthchain (git-ignored; bench/load.py creates it), never
in the project's environment. HealthChain checks no client JWT: it does less than the floor.

Run: bench/.venv-healthchain/bin/python bench/healthchain_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from healthchain.gateway import CDSHooksService, HealthChainAPI  # type: ignore[import-not-found]
from healthchain.models import CDSRequest, CDSResponse  # type: ignore[import-not-found]

app = HealthChainAPI()
cds = CDSHooksService()


@cds.hook("order-select", id="operator-cto")  # type: ignore[untyped-decorator]
def order_select(request: CDSRequest) -> CDSResponse:
    return CDSResponse(
        cards=[
            {
                "uuid": "00000000-0000-4000-8000-000000000000",
                "summary": "Operator-CTO: HealthChain card",
                "indicator": "info",
                "source": {"label": "bench healthchain"},
            }
        ]
    )


app.register_service(cds)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
