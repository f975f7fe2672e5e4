"""The automatic pre-check of submitted materials, shared by the update validator and the activity."""

from __future__ import annotations

from collections.abc import Sequence

from reissue.schemas.enums import DocumentType
from reissue.schemas.events import MaterialRef
from reissue.schemas.identifiers import normalise_resident_id, today_for_validation

__all__ = ["precheck_problems"]

# A one-inch photo is 25 mm x 35 mm; allow scanning slack around that ratio.
_PHOTO_RATIO = 25 / 35
_PHOTO_RATIO_SLACK = 0.05


def precheck_problems(
    *,
    documents: Sequence[MaterialRef],
    required: Sequence[DocumentType],
    loss_proof_number: str,
    report_number: str,
    resident_id: str,
    photo_min_width_px: int,
    photo_min_height_px: int,
    fee_exemption: object | None,
) -> list[str]:
    """Everything wrong with a submission, each naming the field and the rule."""
    problems: list[str] = []
    present = {d.type for d in documents}
    for missing in [t for t in required if t not in present]:
        problems.append(f"documents: missing required material {missing.value}")
    for photo in (d for d in documents if d.type is DocumentType.PHOTO):
        w, h = photo.photo_width_px or 0, photo.photo_height_px or 0
        if w < photo_min_width_px or h < photo_min_height_px:
            problems.append(
                f"documents[{photo.doc_id}]: photo is {w}x{h} px, needs at least "
                f"{photo_min_width_px}x{photo_min_height_px} px"
            )
        elif abs(w / h - _PHOTO_RATIO) > _PHOTO_RATIO * _PHOTO_RATIO_SLACK:
            problems.append(
                f"documents[{photo.doc_id}]: photo is not in one-inch format (25x35 mm aspect)"
            )
    if loss_proof_number != report_number:
        problems.append("loss_proof_number: does not match this case's loss report")
    try:
        normalise_resident_id(resident_id, today=today_for_validation())
    except ValueError as e:
        problems.append(f"applicant.resident_id: {e}")
    if fee_exemption is not None and DocumentType.EXEMPTION_PROOF not in present:
        problems.append("documents: a fee exemption needs an exemption_proof document")
    return problems
