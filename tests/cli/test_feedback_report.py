"""`cto-cds feedback report`: the quality officers' view of the stored feedback, from the command line."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from cds.output.cards import OVERRIDE_REASONS
from cds.store import Store
from tests.cli.test_app import run
from tests.store.conftest import T0, card_audit
from tests.store.test_feedback import item, overridden

LOCAL = "http://cto-cds.org/fhir/CodeSystem/cto-lesion"  # rules.yaml local_system (the default)
COMMENT = "Mrs Jane Roe, MRN 445566: operator on leave"


async def _fill(url: str) -> None:
    async with await Store.open(url) as store:
        cards: dict[str, str] = {}
        for name, band, days in [
            ("easy", "easy", 0),
            ("hard", "difficult", 0),
            ("range", None, 0),
            ("older", "easy", -10),
        ]:
            audit = card_audit(
                scores={"operator_cto": {"band": band}}, created_at=T0 + timedelta(days=days)
            )
            await store.save_card(audit)
            cards[name] = audit.card_uuid
        reason = overridden(cards["hard"], "override-different-operator", "2026-03-01T12:00:00Z")
        assert reason.override_reason is not None
        assert reason.override_reason.reason is not None
        coded: dict[str, Any] = {"system": LOCAL, "code": "override-different-operator"}
        await store.save_feedback(
            "operator-cto",
            [
                item(cards["easy"]),
                reason.model_copy(
                    update={
                        "override_reason": reason.override_reason.model_copy(
                            update={
                                "reason": reason.override_reason.reason.model_copy(update=coded),
                                "user_comment": COMMENT,
                            }
                        )
                    }
                ),
                overridden(cards["range"], None, "2026-03-01T12:00:00Z", comment=COMMENT),
                item(cards["older"]),
            ],
        )


def _database(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cds.db'}"
    asyncio.run(_fill(url))
    return {"CTO_CDS_DATABASE_URL": url}


def test_the_table_by_band_with_rates_and_named_reasons_and_nothing_about_a_patient(
    tmp_path: Path,
) -> None:
    env = _database(tmp_path)
    done = run("feedback", "report", "--since", "2026-02-25", "--until", "2026-03-01", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "operator-cto: cards issued 2026-02-25 to 2026-03-01 (UTC days)"
    assert lines[1] == "3 cards, 3 with feedback"
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:7]}
    # Bands in the score's order (easy before difficult), the undetermined ones after them.
    assert list(rows) == ["easy", "difficult", "undetermined", "all"]
    assert rows["easy"] == ["1", "1", "1", "0", "0%"]
    assert rows["difficult"] == ["1", "1", "0", "1", "100%"]
    assert rows["all"] == ["3", "3", "1", "2", "67%"]
    words = dict(OVERRIDE_REASONS)["override-different-operator"]
    assert f"      1  {words} (override-different-operator)" in lines
    assert "      1  (no reason code)" in lines
    for secret in ("Roe", "445566", "Patient/", "ServiceRequest/", "Practitioner/"):
        assert secret not in done.stdout


def test_json_for_a_dashboard(tmp_path: Path) -> None:
    done = run("feedback", "report", "--json", env=_database(tmp_path))
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert (body["cards"], body["accepted"], body["overridden"]) == (4, 2, 2)
    assert [b["band"] for b in body["by_band"]] == ["easy", "difficult", "undetermined"]
    assert body["by_band"][0]["cards"] == 2  # the older card counts without a period
    reasons = {r["reason"]: r["display"] for r in body["by_override_reason"]}
    assert reasons == {
        f"{LOCAL}|override-different-operator": "Procedure planned by a different operator",
        "(no reason code)": None,
    }
    assert body["since"] is None
    assert body["until"] is None


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = _database(tmp_path)
    cases = [
        (["--since", "2026-02-30"], '--since: "2026-02-30" is not a date YYYY-MM-DD'),
        (["--until", "03/01/2026"], '--until: "03/01/2026" is not a date YYYY-MM-DD'),
        (["--since", "2026-03-02", "--until", "2026-03-01"], "--since 2026-03-02 is after"),
    ]
    for args, message in cases:
        done = run("feedback", "report", *args, env=env)
        assert done.returncode == 2, args
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1, done.stderr
        assert message in done.stderr, done.stderr


def test_a_database_it_cannot_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    done = run("feedback", "report", env={"CTO_CDS_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"})
    assert done.returncode == 2
    assert done.stderr == f"cto-cds: error: CTO_CDS_DATABASE_URL: no database file at {missing}\n"
    assert not missing.exists()  # a report creates no database
    refused = run(
        "feedback",
        "report",
        env={"CTO_CDS_DATABASE_URL": "postgresql+asyncpg://qa:s3cret-pw@127.0.0.1:9/cds"},
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "cto-cds: error: CTO_CDS_DATABASE_URL: cannot use the database"
    )
    assert "s3cret-pw" not in refused.stderr
    assert refused.stderr.count("\n") == 1
    empty = tmp_path / "empty.db"
    empty.touch()
    unmigrated = run(
        "feedback", "report", env={"CTO_CDS_DATABASE_URL": f"sqlite+aiosqlite:///{empty}"}
    )
    assert unmigrated.returncode == 2
    assert "run the store migrations first" in unmigrated.stderr
