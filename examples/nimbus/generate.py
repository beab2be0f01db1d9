"""Regenerate events-2026-q1.jsonl, the bundled sample for specs/ (deterministic: seed 2026).

    python examples/nimbus/generate.py [OUT]

About 3,500 events from January to March 2026, from each customer's contract start, exercising
every metric of specs/: Nimbus Large tokens in three regions, Nimbus Small per user, embeddings
(some on the free legacy model), storage snapshots per bucket, fine-tuning jobs; sent by customer
id and by ingest alias; with a few duplicates, an unknown customer, an event before a contract,
events from December and April, and broken rows for the ledger to show.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).with_name("events-2026-q1.jsonl")
SENDERS = {
    "acme": ["acme", "acme-prod", "acme-staging"],
    "globex": ["globex", "globex-eu"],
    "initech": ["initech", "initech-dev"],
    "umbrella": ["umbrella"],
}
USERS = {c: [f"{c}-user-{i}" for i in range(1, 4)] for c in SENDERS}
STARTS = {
    "acme": datetime(2026, 1, 1, tzinfo=UTC),
    "globex": datetime(2026, 2, 15, tzinfo=UTC),
    "initech": datetime(2026, 3, 10, tzinfo=UTC),
    "umbrella": datetime(2026, 1, 1, tzinfo=UTC),
}
END = datetime(2026, 4, 1, tzinfo=UTC)


def main(out: Path = OUT) -> None:
    rnd = random.Random(2026)
    rows: list[dict[str, object]] = []

    def event(customer: str, kind: str, at: datetime, **properties: object) -> None:
        rows.append(
            {
                "transaction_id": f"evt-{len(rows) + 1:05d}",
                "customer_id": rnd.choice(SENDERS.get(customer, [customer])),
                "event_type": kind,
                "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "properties": properties,
            }
        )

    for customer in SENDERS:
        start = STARTS[customer]
        days = (END - start).days

        def instant() -> datetime:
            return start + timedelta(seconds=rnd.randrange(days * 86400))  # noqa: B023

        regions = ["us"] if customer == "initech" else ["us", "eu", "apac"]
        for _ in range(days * 6):
            event(
                customer,
                "language_model",
                instant(),
                model="nimbus-large",
                region=rnd.choice(regions),
                user_id=rnd.choice(USERS[customer]),
                input_tokens=rnd.randrange(200, 40_000),
                output_tokens=rnd.randrange(50, 8_000),
            )
        for _ in range(days * 2):
            tokens = rnd.randrange(100, 20_000)
            event(
                customer,
                "language_model",
                instant(),
                model="nimbus-small",
                region="us",
                user_id=rnd.choice(USERS[customer]),
                total_tokens=tokens,
            )
        for _ in range(days):
            model = rnd.choice(["embed-v3", "embed-v3", "embed-legacy"])
            event(customer, "embedding", instant(), model=model, tokens=rnd.randrange(1_000, 200_000))
        for day in range(0, days, 4):
            for bucket in ("docs", "support"):
                gigabytes = f"{rnd.randrange(100, 90_000) / 100:.2f}"
                event(
                    customer,
                    "storage_snapshot",
                    start + timedelta(days=day, hours=12),
                    bucket=bucket,
                    gigabytes=gigabytes,
                )
        for _ in range(days // 6):
            event(customer, "fine_tune", instant(), status=rnd.choice(["succeeded", "succeeded", "failed"]))

    # What the ledger is for: outside the run, before a contract, an unknown sender, a bad
    # number, a metric-less event type, duplicates.
    for at in (datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC), END):
        event(
            "acme",
            "language_model",
            at,
            model="nimbus-large",
            region="us",
            input_tokens=1000,
            output_tokens=10,
        )
    event(
        "initech",
        "language_model",
        datetime(2026, 3, 5, tzinfo=UTC),
        model="nimbus-large",
        region="us",
        input_tokens=700,
        output_tokens=70,
    )
    march = datetime(2026, 3, 3, 9, tzinfo=UTC)
    event(
        "hooli", "language_model", march, model="nimbus-large", region="us", input_tokens=5, output_tokens=5
    )
    event(
        "globex",
        "language_model",
        march,
        model="nimbus-large",
        region="eu",
        input_tokens="12k",
        output_tokens=100,
    )
    event("umbrella", "page_view", march, path="/pricing")
    rows.sort(key=lambda r: str(r["timestamp"]))
    rows += [dict(r) for r in rnd.sample(rows, 5)]  # resent: duplicates of earlier transactions
    lines = [json.dumps(r, separators=(",", ":")) for r in rows]
    lines.insert(len(lines) // 2, '{"transaction_id":"evt-cut","customer_id":"acme","event_type":')
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
