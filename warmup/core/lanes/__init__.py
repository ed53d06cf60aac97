"""A lane's rules: state machine, pacing, ramp schedule, backoff, rolling rates,
operator controls, overflow, capacity plan, the ISPs' reputation data."""
