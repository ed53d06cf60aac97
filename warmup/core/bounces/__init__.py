"""Bounce mail: parsing DSNs, NDRs, SES and ARF reports, their verdicts, late reports
(which send, what effect, exactly once), signed VERP."""
