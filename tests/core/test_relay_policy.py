"""Relay policy: paths, relaying decisions, per-client limits (pure, table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmup.core.recipients.address import Address
from warmup.core.relay.policy import (
    AUTH_REQUIRED,
    NO_BOUNCE_INTAKE,
    RELAY_DENIED,
    AuthFailures,
    ClientLimits,
    RecipientRoute,
    Refusal,
    TokenBucket,
    check_campaign_name,
    check_command,
    check_path,
    client_key,
    decide_recipient,
    decide_sender,
    next_auth_failures,
    split_path,
    take_token,
)
from warmup.core.settings import RelaySettings

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("FROM:<a@b.example>", ("a@b.example", "")),
        (
            "from: <a@b.example> SIZE=10 BODY=8BITMIME",
            ("a@b.example", "SIZE=10 BODY=8BITMIME"),
        ),
        ("FROM:a@b.example SIZE=10", ("a@b.example", "SIZE=10")),
        ("FROM:<>", ("", "")),
        ('FROM:<"x>y"@b.example>', ('"x>y"@b.example', "")),
        ('FROM:<"x\\"y>"@b.example> X', ('"x\\"y>"@b.example', "X")),
        ("FROM:<a@b.example", Refusal(501, "5.5.4", "Unterminated <path>")),
        ("TO:<a@b.example>", Refusal(501, "5.5.4", "Syntax: FROM:<address>")),
    ],
)
def test_split_path(argument: str, expected: object) -> None:
    assert split_path(argument, "FROM:") == expected


@pytest.mark.parametrize(
    ("path", "smtputf8", "code", "status", "text"),
    [
        ("@relay.example:victim@target.example", False, 553, "5.1.3", "Source route"),
        ("@a,@b:victim@target.example", False, 553, "5.1.3", "Source route"),
        ("victim%target.example@us.example", False, 553, "5.1.3", "Percent-hack"),
        ("victim@target.example%us.example", False, 553, "5.1.3", "Percent-hack"),
        ("target.example!victim@us.example", False, 553, "5.1.3", "Bang path"),
        ('"victim@target.example"@us.example', False, 553, "5.1.3", "Quoted"),
        ('"a%b"@us.example', False, 553, "5.1.3", "Quoted"),
        ('"a!b"@us.example', False, 553, "5.1.3", "Quoted"),
        ('"a\\"b"@us.example', False, 553, "5.1.3", "Quoted"),
        ('"@us.example', False, 553, "5.1.3", "Bad quoted"),
        ('"abc@us.example', False, 553, "5.1.3", "Bad quoted"),
        ("josé@example.com", False, 553, "5.6.7", "Non-ASCII"),
        ("user@[192.0.2.1]", False, 553, "5.1.3", "Bad recipient"),
        ("no-at-sign", False, 553, "5.1.3", "Bad recipient"),
        ("a@localhost", False, 553, "5.1.3", "Bad recipient"),
    ],
)
def test_recipient_paths_refused(
    path: str, smtputf8: bool, code: int, status: str, text: str
) -> None:
    refusal = check_path(path, recipient=True, smtputf8=smtputf8)
    assert isinstance(refusal, Refusal)
    assert (refusal.code, refusal.enhanced) == (code, status)
    assert refusal.text.startswith(text)
    assert refusal.reply.startswith(f"{code} {status} ")


@pytest.mark.parametrize(
    ("path", "smtputf8", "expected"),
    [
        ("Ann@Example.COM", False, Address("Ann", "example.com")),
        ('"john smith"@example.com', False, Address('"john smith"', "example.com")),
        ("josé@example.com", True, Address("josé", "example.com")),
        ("a+tag@sub.example.org", False, Address("a+tag", "sub.example.org")),
    ],
)
def test_recipient_paths_accepted(path: str, smtputf8: bool, expected: Address) -> None:
    assert check_path(path, recipient=True, smtputf8=smtputf8) == expected


def test_sender_refusals_use_the_sender_status() -> None:
    refusal = check_path("@a:b@c.example", recipient=False, smtputf8=False)
    assert isinstance(refusal, Refusal) and refusal.enhanced == "5.1.7"
    bad = check_path("nonsense", recipient=False, smtputf8=False)
    assert isinstance(bad, Refusal) and bad.text == "Bad sender address syntax"


@pytest.mark.parametrize(
    ("argument", "refused"),
    [
        ("FROM:<a@b.example>", False),
        ("FROM:<a@b.example>\rBcc: x@y.example", True),
        ("FROM:<a@b.example> SIZE=1\x00", True),
        ("TO:<a@b.example>\x7f", True),
        ("mta.example.com", False),
    ],
)
def test_control_characters_are_refused(argument: str, refused: bool) -> None:
    refusal = check_command(argument)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert refusal.reply.startswith("501 5.5.2")


@pytest.mark.parametrize(
    ("may_relay", "has_sink", "expected"),
    [
        (True, False, None),
        (False, True, None),
        (True, True, None),
        (False, False, AUTH_REQUIRED),
    ],
)
def test_decide_sender(may_relay: bool, has_sink: bool, expected: object) -> None:
    assert decide_sender(may_relay=may_relay, has_sink=has_sink) == expected


@pytest.mark.parametrize(
    ("domain", "has_sink", "may_relay", "expected"),
    [
        ("bounce.example", True, False, RecipientRoute.bounce),
        ("bounce.example", True, True, RecipientRoute.bounce),
        ("bounce.example", False, True, NO_BOUNCE_INTAKE),
        ("gmail.com", True, True, RecipientRoute.queue),
        ("gmail.com", False, True, RecipientRoute.queue),
        ("gmail.com", True, False, RELAY_DENIED),
        ("gmail.com", False, False, RELAY_DENIED),
    ],
)
def test_decide_recipient(
    domain: str, has_sink: bool, may_relay: bool, expected: object
) -> None:
    result = decide_recipient(
        Address("u", domain),
        bounce_domain="bounce.example",
        has_sink=has_sink,
        may_relay=may_relay,
    )
    assert result == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("  spring-sale ", "spring-sale"), ("Newsletter 12 ☃", "Newsletter 12 ☃")],
)
def test_campaign_names(text: str, expected: str) -> None:
    assert check_campaign_name(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "x" * 256, "a\rb", "a\x00"])
def test_bad_campaign_names(text: str) -> None:
    with pytest.raises(ValueError, match="campaign name"):
        check_campaign_name(text)


def test_token_bucket_holds_a_minute_and_refills_evenly() -> None:
    bucket: TokenBucket | None = None
    taken = 0
    for _ in range(130):
        ok, bucket = take_token(bucket, per_minute=120, now=NOW)
        taken += ok
    assert taken == 120
    ok, bucket = take_token(bucket, per_minute=120, now=NOW + timedelta(seconds=0.4))
    assert not ok
    ok, bucket = take_token(bucket, per_minute=120, now=NOW + timedelta(seconds=0.5))
    assert ok
    # An hour idle refills to the cap, not beyond; a clock going back refills nothing.
    _, bucket = take_token(bucket, per_minute=120, now=NOW + timedelta(hours=1))
    assert bucket.tokens == 119
    _, bucket = take_token(bucket, per_minute=120, now=NOW)
    assert bucket.tokens == 118


def test_auth_failures_count_lock_and_start_over() -> None:
    lockout = timedelta(minutes=15)
    state = None
    delays = []
    for second in range(5):
        state = next_auth_failures(
            state, now=NOW + timedelta(seconds=second), limit=5, lockout=lockout
        )
        delays.append(state.delay().total_seconds())
    assert state is not None
    assert delays == [1, 2, 4, 8, 8]
    assert state.locked_until == NOW + timedelta(seconds=4) + lockout
    # After a lockout, and long after the last failure, counting starts over.
    after = next_auth_failures(
        state, now=NOW + timedelta(hours=1), limit=5, lockout=lockout
    )
    assert after == AuthFailures(count=1, last_at=NOW + timedelta(hours=1))
    old = AuthFailures(count=3, last_at=NOW)
    later = NOW + lockout + timedelta(seconds=1)
    assert next_auth_failures(old, now=later, limit=5, lockout=lockout).count == 1


def test_a_failure_during_a_lock_extends_it_and_never_restarts_the_count() -> None:
    """The bug: the failure right after a lock restarted the count at 1 and lifted
    the lock."""
    lockout = timedelta(minutes=15)
    locked = AuthFailures(count=5, last_at=NOW, locked_until=NOW + lockout)
    during = next_auth_failures(
        locked, now=NOW + timedelta(minutes=1), limit=5, lockout=lockout
    )
    assert during.count == 6
    assert during.locked_until == NOW + timedelta(minutes=1) + lockout
    assert during.locked(NOW + timedelta(minutes=15))
    assert not during.locked(NOW + timedelta(minutes=16))


def _fail(
    limits: ClientLimits, client: str, now: datetime, user: str | None = None
) -> timedelta:
    assert limits.auth_begin(client, user, now) is None
    return limits.auth_end(client, user, failed=True, now=now)


def test_client_limits_auth_lockout() -> None:
    settings = RelaySettings(
        auth_failures_before_lockout=3, lockout=timedelta(minutes=5)
    )
    limits = ClientLimits(settings)
    assert _fail(limits, "a", NOW) == timedelta(seconds=1)
    _fail(limits, "a", NOW)
    assert _fail(limits, "a", NOW) == timedelta(seconds=4)
    refusal = limits.auth_begin("a", None, NOW + timedelta(minutes=4))
    assert refusal is not None and refusal.reply.startswith("454 4.7.0")
    assert limits.auth_begin("b", None, NOW) is None
    limits.auth_end("b", None, failed=False, now=NOW)
    assert limits.auth_begin("a", None, NOW + timedelta(minutes=5)) is None
    assert limits.checking == {"a": 1}


def test_attempts_are_counted_before_their_check() -> None:
    """Parallel attempts: each counts while it is checked, so no more than the
    limit are ever checked at once, whatever their outcome."""
    settings = RelaySettings(auth_failures_before_lockout=3)
    limits = ClientLimits(settings)
    started = [limits.auth_begin("a", "news", NOW) for _ in range(8)]
    assert started[:3] == [None, None, None]
    assert all(r is not None and r.code == 454 for r in started[3:])
    for _ in range(3):
        limits.auth_end("a", "news", failed=True, now=NOW)
    assert limits.checking == {} and limits.user_checking == {}
    assert limits.failures["a"].locked(NOW)
    # A right password right after is refused too, until the lock expires.
    assert limits.auth_begin("a", "news", NOW + timedelta(minutes=14)) is not None
    assert limits.auth_begin("a", "news", NOW + timedelta(minutes=15)) is None


def test_a_success_frees_its_slot_without_counting() -> None:
    limits = ClientLimits(RelaySettings(auth_failures_before_lockout=2))
    for _ in range(5):
        assert limits.auth_begin("a", "news", NOW) is None
        assert limits.auth_end("a", "news", failed=False, now=NOW) == timedelta(0)
    assert limits.failures == {} and limits.checking == {}


def test_one_account_is_guarded_whatever_the_client() -> None:
    """40 addresses x 5 guesses must not make 200 guesses at one account."""
    settings = RelaySettings(
        auth_failures_before_lockout=5, user_auth_failures_before_lockout=10
    )
    limits = ClientLimits(settings)
    checked = 0
    for host in range(40):
        for _ in range(5):
            if limits.auth_begin(f"192.0.2.{host}", "news", NOW) is None:
                checked += 1
                limits.auth_end(f"192.0.2.{host}", "news", failed=True, now=NOW)
    assert checked == 10
    # Another account from a fresh client is not affected.
    assert limits.auth_begin("198.51.100.1", "other", NOW) is None


def test_a_login_does_not_wipe_the_failures_of_its_client() -> None:
    """Holding one account must not let a client guess another's password forever:
    the count only fades lockout after the last failure."""
    settings = RelaySettings(
        auth_failures_before_lockout=3, lockout=timedelta(minutes=5)
    )
    limits = ClientLimits(settings)
    _fail(limits, "192.0.2.7", NOW)
    _fail(limits, "192.0.2.7", NOW)
    assert limits.auth_begin("192.0.2.7", "mine", NOW) is None
    limits.auth_end("192.0.2.7", "mine", failed=False, now=NOW)
    _fail(limits, "192.0.2.7", NOW + timedelta(seconds=10))
    assert limits.auth_begin("192.0.2.7", None, NOW + timedelta(seconds=11))


def test_client_limits_connections() -> None:
    limits = ClientLimits(RelaySettings(max_connections_per_client=2))
    assert limits.open("192.0.2.1") is None
    assert limits.open("192.0.2.1") is None
    refusal = limits.open("192.0.2.1")
    assert refusal is not None and refusal.reply.startswith("421 4.7.0")
    assert limits.open("192.0.2.2") is None  # another client is not affected
    limits.close("192.0.2.1")
    assert limits.open("192.0.2.1") is None
    for _ in range(3):
        limits.close("192.0.2.1")
    assert "192.0.2.1" not in limits.connections


def test_client_limits_messages() -> None:
    limits = ClientLimits(RelaySettings(messages_per_minute_per_client=2))
    assert limits.message("a", NOW) is None
    assert limits.message("a", NOW) is None
    refusal = limits.message("a", NOW)
    assert refusal is not None and refusal.reply.startswith("450 4.7.1")
    assert limits.message("b", NOW) is None
    assert limits.message("a", NOW + timedelta(seconds=30)) is None


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_clients_are_counted_by_address_or_ipv6_slash_64(ip: str, key: str) -> None:
    assert client_key(ip) == key


def test_one_ipv6_host_cannot_dodge_the_limits_by_hopping_addresses() -> None:
    settings = RelaySettings(max_connections_per_client=2)
    limits = ClientLimits(settings)
    assert limits.open("2001:db8::1") is None
    assert limits.open("2001:db8::2") is None
    refusal = limits.open("2001:db8::3")
    assert refusal is not None and refusal.reply.startswith("421")
    limits.close("2001:db8::1")
    assert limits.open("2001:db8::4") is None


def test_client_state_stays_bounded() -> None:
    settings = RelaySettings(lockout=timedelta(minutes=1))
    limits = ClientLimits(settings, max_clients=3)
    for index in range(5):
        limits.message(f"c{index}", NOW + timedelta(seconds=index))
    assert set(limits.buckets) == {"c2", "c3", "c4"}
    # Idle a minute: a full bucket is as good as none, so it goes first.
    limits.message("late", NOW + timedelta(minutes=2))
    assert set(limits.buckets) == {"late"}
    for _ in range(5):
        _fail(limits, "locked", NOW)
    for index in range(4):
        _fail(limits, f"f{index}", NOW + timedelta(seconds=index))
    assert "locked" in limits.failures and len(limits.failures) == 3
    _fail(limits, "new", NOW + timedelta(seconds=30))
    assert set(limits.failures) == {"locked", "f3", "new"}  # locked ones stay
    _fail(limits, "later", NOW + timedelta(minutes=2))  # all others forgotten
    assert set(limits.failures) == {"later"}
    assert limits.checking == {}
