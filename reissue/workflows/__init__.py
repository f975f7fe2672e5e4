"""The workflows a worker runs and replay checks: the case, and the record of payments to closed cases."""

from reissue.workflows.case import CardReissueWorkflow
from reissue.workflows.late_payment import LatePaymentWorkflow

WORKFLOWS: tuple[type, ...] = (CardReissueWorkflow, LatePaymentWorkflow)
