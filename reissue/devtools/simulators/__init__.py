"""Simulators of the partner systems, each a small HTTP service run as its own process
(`reissue simulator <system>`), started by `reissue dev` and by the tests.

Each keeps its own state in a SQLite file (so a killed and restarted simulator
remembers what it did, as the real system would) and has knobs, set at start or
at run time through `PUT /_knobs` (`POST /_reset` forgets every record and resets
the knobs):

- `latency_ms`: every call waits this long first;
- `down`: every call fails with 503 (the system is unavailable);
- `error_rate`: this share of calls fails with 503 before doing anything;
- `lost_answer_rate`: this share of calls does its work, then answers 504 (the
  caller cannot tell it from a failure: it must retry with the same key);
- `seed`: when set (>= 0), the two shares above are drawn from this seed, so a test's
  faults come in the same order each run.

The card bureau has three more: `production_delay_ms` (how long it takes to make
a card before it reports: the delayed callback), `failure_rate` (this share of
orders fails production) and `fail_next` (the next this many orders fail). The
payment platform has `webhook_delay_ms` (how long after a payment its webhook
first goes out: the delayed callback).

Systems: `notifications` (the SMS/app-message gateway: `POST /v1/messages`,
deduplicated by message ID; `GET /_inbox` is what recipients saw), `payments`
(the payment platform: orders `POST /v1/orders` keyed by order ID,
`GET /v1/orders/{id}`, `POST /v1/orders/close`; refunds `POST /v1/refunds` keyed by
refund ID, `GET /v1/refunds/{id}`; a payer pays an open order with `POST /_pay`, and
the platform calls the front door's signed webhook for it), `bank` (card accounts:
freeze, unfreeze, open, close) and `bureau` (the card bureau: `POST /v1/orders`,
`POST /v1/orders/cancel`; it reports each card made, or a failure). The bureau and
the payment platform call back to the front door they are pointed at with
`PUT /_report_to`, retrying with backoff until it takes the call (`GET /_reports`).
"""

from __future__ import annotations

from reissue.devtools.simulators._plumbing import Knobs
from reissue.devtools.simulators._serving import (
    PARTNERS,
    SYSTEMS,
    build_simulator,
    free_port,
    partner_simulators,
    serve_simulator,
    spawn,
)

__all__ = [
    "PARTNERS",
    "SYSTEMS",
    "Knobs",
    "build_simulator",
    "free_port",
    "partner_simulators",
    "serve_simulator",
    "spawn",
]
