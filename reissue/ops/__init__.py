"""Operator tools: audit (export, replay, verify), invariants, reports and case lists."""
