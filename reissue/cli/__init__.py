"""`reissue`: the one command-line entry point (dev stack, worker, migrations, case actions).

One module per sub-app: `service` (the processes), `case` (its event commands
derived from the catalogue of events in `events`), `ops` (lists, report,
invariants), `audit`, `policy`, `registry` and `dev` (stack, demo, soak, bench).
"""

from __future__ import annotations

import typer

from reissue.cli import audit, case, dev, ops, policy, registry, service

__all__ = ["app", "main"]

app = typer.Typer(help="Lost medical insurance card reissue orchestrator.", no_args_is_help=True)
for module in (dev, service, ops):
    app.registered_commands += module.commands.registered_commands
app.add_typer(case.case_app, name="case")
app.add_typer(ops.cases_app, name="cases")
app.add_typer(dev.schemas_app, name="schemas")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(registry.registry_app, name="registry")
app.add_typer(service.api_key_app, name="api-key")
app.add_typer(service.staff_app, name="staff-user")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
