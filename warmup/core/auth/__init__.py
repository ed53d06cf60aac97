"""Sender authentication: DKIM signing, SPF, DMARC reports, `warmup doctor`."""
