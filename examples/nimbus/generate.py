"""Regenerate events-2026-03.jsonl, the bundled sample for specs/ (deterministic: seed 2026).

    python examples/nimbus/generate.py [OUT]

About 3,000 March 2026 events exercising every metric of specs/: Nimbus Large tokens in three
regions, Nimbus Small per user, embeddings (some on the free legacy model), storage snapshots
per bucket, fine-tuning jobs; sent by customer id and by ingest alias; with a few duplicates,
an unknown customer, events from February and April, and broken rows for the ledger to show.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).with_name("events-2026-03.jsonl")
SENDERS = {
    "acme": ["acme", "acme-prod", "acme-staging"],
    "globex": ["globex", "globex-eu"],
    "initech": ["initech", "initech-dev"],
    "umbrella": ["umbrella"],
}
USERS = {c: [f"{c}-user-{i}" for i in range(1, 4)] for c in SENDERS}
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


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

    def instant() -> datetime:
        return MARCH + timedelta(seconds=rnd.randrange(31 * 86400))

    for customer in SENDERS:
        regions = ["us"] if customer == "initech" else ["us", "eu", "apac"]
        for _ in range(500):
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
        for _ in range(150):
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
        for _ in range(60):
            model = rnd.choice(["embed-v3", "embed-v3", "embed-legacy"])
            event(customer, "embedding", instant(), model=model, tokens=rnd.randrange(1_000, 200_000))
        for day in range(1, 32, 3):
            for bucket in ("docs", "support"):
                gigabytes = f"{rnd.randrange(100, 90_000) / 100:.2f}"
                event(
                    customer,
                    "storage_snapshot",
                    MARCH + timedelta(days=day - 1, hours=12),
                    bucket=bucket,
                    gigabytes=gigabytes,
                )
        for _ in range(12):
            event(customer, "fine_tune", instant(), status=rnd.choice(["succeeded", "succeeded", "failed"]))

    # What the ledger is for: outside the month, an unknown sender, a bad number, duplicates.
    event(
        "acme",
        "language_model",
        datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
        model="nimbus-large",
        region="us",
        input_tokens=1000,
        output_tokens=10,
    )
    event(
        "acme",
        "language_model",
        datetime(2026, 4, 1, tzinfo=UTC),
        model="nimbus-large",
        region="us",
        input_tokens=1000,
        output_tokens=10,
    )
    event(
        "hooli",
        "language_model",
        instant(),
        model="nimbus-large",
        region="us",
        input_tokens=5,
        output_tokens=5,
    )
    event(
        "globex",
        "language_model",
        instant(),
        model="nimbus-large",
        region="eu",
        input_tokens="12k",
        output_tokens=100,
    )
    event("umbrella", "page_view", instant(), path="/pricing")
    rows.sort(key=lambda r: str(r["timestamp"]))
    rows += [dict(r) for r in rnd.sample(rows, 5)]  # resent: duplicates of earlier transactions
    lines = [json.dumps(r, separators=(",", ":")) for r in rows]
    lines.insert(len(lines) // 2, '{"transaction_id":"evt-cut","customer_id":"acme","event_type":')
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
