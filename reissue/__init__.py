"""The card reissue orchestrator.

Each folder is one concern and imports only downward (tests/test_layout.py and
the import-linter contract in pyproject.toml enforce it):

    cli        the `reissue` command line, one module per sub-app
    devtools   embedded stack, demo, seed data, soak, benchmark and its bare reference
    ops        operator tools: audit, invariants, reports and case lists
    workers    process wiring: settings, worker, codec server, telemetry, logging
    client     the public client for other Python services (schemas + temporalio only)
    workflows  the case, deterministic
    activities the side effects, against the PostgreSQL system of record
    migrations the system of record's schema
    schemas    the contract: models, identifiers, codec, errors, clock
"""
