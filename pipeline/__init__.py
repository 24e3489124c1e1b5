"""Safeguarding children partnership pipeline: pathways, deadlines and escalation."""
