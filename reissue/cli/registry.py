"""`reissue registry …`: people and cards in the registry of a dev or test stack."""

from __future__ import annotations

from typing import Annotated

import typer

from reissue.cli._common import (
    _run,
    _settings,
    console,
    err_console,
)
from reissue.schemas.enums import (
    InsuredCategory,
)

registry_app = typer.Typer(
    help="People and cards in the registry of a dev or test stack.", no_args_is_help=True
)


@registry_app.command("enrol")
def registry_enrol(
    resident_id: Annotated[str, typer.Option(help="18-digit resident ID number.")],
    district: Annotated[str, typer.Option(help="District code (500xxx).")] = "500103",
    category: Annotated[InsuredCategory, typer.Option()] = InsuredCategory.URBAN_EMPLOYEE,
    balance_fen: Annotated[int, typer.Option(help="Account balance, in fen.")] = 100_000,
    card: Annotated[str | None, typer.Option(help="Card number (default: a new one).")] = None,
    bank: Annotated[bool, typer.Option(help="A third-generation card with a bank account.")] = True,
    mobile: Annotated[
        str | None,
        typer.Option(
            help="The owner's mobile number on record (one-time codes for lifting a report "
            "by hotline or online go to it; without one, only a counter lifts it)."
        ),
    ] = None,
) -> None:
    """Enrol a person with an active card, to report it lost on a dev or test stack.

    Prints the card number. The registry is the social security system's; production
    stacks refuse this command."""
    from reissue.activities.db import create_pool
    from reissue.devtools.seed import enrol_person
    from reissue.schemas.identifiers import (
        normalise_card_number,
        normalise_district,
        normalise_mobile,
        normalise_resident_id,
        today_for_validation,
    )

    settings = _settings()
    if settings.environment == "production":
        err_console.print("The registry of a production stack is not ours to write to.")
        raise typer.Exit(2)
    try:
        rid = normalise_resident_id(resident_id, today=today_for_validation())
        where = normalise_district(district)
        number = normalise_card_number(card) if card else None
        on_record = normalise_mobile(mobile) if mobile is not None else None
    except ValueError as e:
        err_console.print(f"[red]Invalid input:[/]\n  {e}")
        raise typer.Exit(2) from None

    async def go() -> str:
        pool = await create_pool(settings.require_database_url())
        try:
            async with pool.acquire() as conn:
                return await enrol_person(
                    conn,
                    secret=settings.case_secret(),
                    resident_id=rid,
                    insured_category=category.value,
                    district=where,
                    balance_fen=balance_fen,
                    bank="Chongqing Rural Commercial Bank" if bank else None,
                    bank_url=settings.require_partner_url("bank") if bank else None,
                    card_number=number,
                    mobile=on_record,
                )
        finally:
            await pool.close()

    console.print(_run(go()))
