"""The events' wire format and every check decode makes, with the reasons a dead letter carries."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from kafka_common import events, timestamps
from kafka_common.shop import menu
from kafka_common.shop.events import Pizza, PizzaAssembled, PizzaBaked, PizzaOrdered, PizzaStatus

ORDER_ID = "0123456789abcdef0123456789abcdef"
PIZZA = Pizza(sauce="Pesto", cheese="Gouda", main_topping="Pork", extra_toppings=("Onion", "Eggs"))
ORDER = PizzaOrdered(order_id=ORDER_ID, customer_id="c0ffee", username="Zoë", pizza=PIZZA)
AT = datetime(2026, 11, 25, 12, 0, 4, 123456, tzinfo=UTC)


def record(payload=ORDER, **header_changes):
    """(key, value, headers) as a consumer gets them; a header set to None is left out."""
    key, value, headers = events.encode(payload, "/tests", event_id="e-1", time=AT)
    changed = {name: raw for name, raw in headers}
    for name, raw in header_changes.items():
        changed[name] = raw
    return key.encode(), value, [(name, raw) for name, raw in changed.items() if raw is not None]


def reason(model, key, value, headers) -> str:
    with pytest.raises(events.InvalidEvent) as caught:
        events.decode(model, key, value, headers)
    return str(caught.value)


def order_json(**changes) -> bytes:
    body = json.loads(events.encode(ORDER, "/tests")[1])
    for name, value in changes.items():
        if name.startswith("pizza_"):
            body["pizza"][name.removeprefix("pizza_")] = value
        else:
            body[name] = value
    return json.dumps(body).encode()


# --- the wire format ------------------------------------------------------------------------


def test_the_value_is_compact_json_in_field_order_and_the_headers_are_cloudevents():
    key, value, headers = events.encode(ORDER, "/pizza-shop/webapp", event_id="e-1", time=AT)
    assert key == ORDER_ID
    assert value == (
        b'{"order_id":"0123456789abcdef0123456789abcdef","customer_id":"c0ffee","username":"Zo\xc3\xab",'
        b'"pizza":{"sauce":"Pesto","cheese":"Gouda","main_topping":"Pork","extra_toppings":["Onion","Eggs"]}}'
    )
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_source", b"/pizza-shop/webapp"),
        ("ce_type", b"com.pizzashop.pizza.ordered"),
        ("ce_time", b"2026-11-25T12:00:04.123456Z"),
        ("ce_subject", ORDER_ID.encode()),
        ("ce_schemaversion", b"1"),
        ("content-type", b"application/json"),
    ]


@pytest.mark.parametrize(
    "payload, value",
    [
        (PizzaStatus(order_id=ORDER_ID, status=-100), b'{"order_id":"%s","status":-100}'),
        (PizzaBaked(order_id=ORDER_ID, customer_id="ab"), b'{"order_id":"%s","customer_id":"ab"}'),
        (
            PizzaAssembled(
                order_id=ORDER_ID, customer_id="ab", pizza=Pizza(sauce="Tomato", cheese="Gouda", main_topping="Pork")
            ),
            b'{"order_id":"%s","customer_id":"ab","pizza":{"sauce":"Tomato","cheese":"Gouda","main_topping":"Pork","extra_toppings":[]}}',
        ),
    ],
)
def test_every_payload_round_trips(payload, value):
    key, encoded, headers = events.encode(payload, "/tests", time=AT)
    assert encoded == value % ORDER_ID.encode()
    event = events.decode(type(payload), key.encode(), encoded, headers)
    assert event.payload == payload
    assert event.order_id == ORDER_ID
    assert (event.envelope.type, event.envelope.source, event.envelope.time) == (payload.TYPE, "/tests", AT)
    assert event.envelope.schema_version == 1
    assert len(event.envelope.id) == 36  # a fresh UUID per event


def test_a_decoded_event_carries_its_envelope():
    event = events.decode(PizzaOrdered, *record())
    assert event.envelope == events.Envelope(
        id="e-1", type=PizzaOrdered.TYPE, source="/tests", time=AT, schema_version=1, order_id=ORDER_ID
    )
    assert event.payload == ORDER and event.payload.pizza.extra_toppings == ("Onion", "Eggs")


def test_a_record_without_a_key_or_a_schema_version_is_still_an_event():
    key, value, headers = record(ce_schemaversion=None)
    assert events.decode(PizzaOrdered, None, value, headers).envelope.schema_version == 1


def test_a_time_with_an_offset_is_read_in_utc():
    event = events.decode(PizzaOrdered, *record(ce_time=b"2026-11-25T13:00:04.123456+01:00"))
    assert event.envelope.time == AT and event.envelope.time.tzinfo is UTC


def test_the_pizza_as_json_and_as_a_dict():
    assert json.loads(PIZZA.to_json()) == PIZZA.as_dict()
    assert PIZZA.as_dict() == {
        "sauce": "Pesto",
        "cheese": "Gouda",
        "main_topping": "Pork",
        "extra_toppings": ["Onion", "Eggs"],
    }


def test_untrusted_input_is_validated_by_convert():
    assert msgspec.convert(PIZZA.as_dict(), Pizza) == PIZZA
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value 'Ketchup' - at `\$.sauce`"):
        msgspec.convert({**PIZZA.as_dict(), "sauce": "Ketchup"}, Pizza)


def test_repeated_extra_toppings_are_refused_even_when_built_directly():
    with pytest.raises(ValueError, match="extra_toppings lists 'Onion' more than once"):
        Pizza(sauce="Pesto", cheese="Gouda", main_topping="Pork", extra_toppings=("Onion", "Eggs", "Onion"))


# --- what makes a record invalid, and the reason given --------------------------------------

SAUCES = ", ".join(menu.SAUCES)
EXTRAS = ", ".join(menu.EXTRA_TOPPINGS)
ORDERED = "invalid com.pizzashop.pizza.ordered: "


@pytest.mark.parametrize(
    "value, message",
    [
        (order_json(pizza_sauce="Ketchup"), f"pizza.sauce: Invalid enum value 'Ketchup'; expected one of: {SAUCES}"),
        (order_json(pizza_cheese=None), "pizza.cheese: Expected `str`, got `null`"),
        (
            order_json(pizza_extra_toppings=["Onion", "Ham"]),
            f"pizza.extra_toppings[1]: Invalid enum value 'Ham'; expected one of: {EXTRAS}",
        ),
        (order_json(pizza_extra_toppings=["Onion", "Onion"]), "pizza: extra_toppings lists 'Onion' more than once"),
        (
            order_json(pizza_extra_toppings=[*menu.EXTRA_TOPPINGS, "Onion"]),
            "pizza.extra_toppings: Expected `array` of length <= 6",
        ),
        (order_json(pizza_extra_toppings="Onion"), "pizza.extra_toppings: Expected `array`, got `str`"),
        (order_json(pizza_size="XL"), "pizza: Object contains unknown field `size`"),
        (order_json(tip=2), "value: Object contains unknown field `tip`"),
        (order_json(username=""), "username: Expected `str` of length >= 1"),
        (order_json(username="x" * 33), "username: Expected `str` of length <= 32"),
        (order_json(customer_id="C0FFEE"), "customer_id: Expected `str` matching regex"),
        (order_json(customer_id="c0ffee\n"), "customer_id: Expected `str` matching regex"),
        (order_json(order_id="not-an-order"), "order_id: Expected `str` matching regex"),
        (b'{"order_id":"%s"}' % ORDER_ID.encode(), "value: Object missing required field `customer_id`"),
        (b"[]", "value: Expected `object`, got `array`"),
        (b"not json", "value is not JSON: JSON is malformed"),
        (b"", "value is not JSON: Input data was truncated"),
    ],
)
def test_a_payload_that_breaks_its_schema_is_invalid_with_the_field_named(value, message):
    key, _, headers = record()
    assert reason(PizzaOrdered, None, value, headers).startswith(ORDERED + message)


@pytest.mark.parametrize(
    "value, message",
    [
        (
            b'{"order_id":"%s","status":999}',
            "status: Invalid enum value 999; expected one of: 100, 200, 300, 400, -100",
        ),
        (b'{"order_id":"%s","status":"200"}', "status: Expected `int`, got `str`"),
        (b'{"order_id":"%s","status":true}', "status: Expected `int`, got `bool`"),
    ],
)
def test_a_status_must_be_a_known_code(value, message):
    _, _, headers = record(PizzaStatus(order_id=ORDER_ID, status=200))
    assert (
        reason(PizzaStatus, None, value % ORDER_ID.encode(), headers)
        == "invalid com.pizzashop.pizza.status: " + message
    )


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"ce_id": None, "ce_time": b""}, "missing CloudEvents headers: ce_id, ce_time"),
        ({"ce_specversion": b"0.3"}, "unsupported ce_specversion '0.3'"),
        (
            {"ce_type": b"com.pizzashop.pizza.baked"},
            "ce_type 'com.pizzashop.pizza.baked' is not the expected com.pizzashop.pizza.ordered",
        ),
        ({"ce_schemaversion": b"2"}, "schema version 2 is newer than this service understands (1)"),
        ({"ce_schemaversion": b"one"}, "ce_schemaversion is not an integer"),
        ({"ce_time": b"yesterday"}, "ce_time 'yesterday' is not an RFC 3339 time with a zone"),
        ({"ce_time": b"2026-11-25T12:00:04"}, "ce_time '2026-11-25T12:00:04' is not an RFC 3339 time with a zone"),
        ({"ce_time": b"9999-12-31T23:59:59-05:00"}, "ce_time '9999-12-31T23:59:59-05:00' is out of range"),
        ({"ce_id": b"\xff\xfe"}, "header ce_id is not UTF-8"),
        ({"ce_source": b"\xc3"}, "header ce_source is not UTF-8"),
    ],
)
def test_an_envelope_that_breaks_the_contract_is_invalid(changes, message):
    assert reason(PizzaOrdered, *record(**changes)) == message


def test_a_time_far_in_the_future_is_invalid():
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat().encode()
    assert "more than a day in the future" in reason(PizzaOrdered, *record(ce_time=ahead))


def test_an_older_schema_version_is_read():
    assert events.decode(PizzaOrdered, *record(ce_schemaversion=b"0")).envelope.schema_version == 0


def test_the_key_must_be_the_order_id():
    _, value, headers = record()
    assert reason(PizzaOrdered, b"f" * 32, value, headers) == "record key does not match the event's order_id"


def test_a_record_without_a_value_or_headers_is_invalid():
    key, _, headers = record()
    assert reason(PizzaOrdered, key, None, headers) == "record has no value"
    assert reason(PizzaOrdered, key, b"{}", None).startswith("missing CloudEvents headers: ce_specversion, ce_id")


def test_a_quoted_value_that_looks_like_a_path_does_not_move_the_field_named():
    value = order_json(pizza_sauce="x - at `$.order_id`")
    assert reason(PizzaOrdered, None, value, record()[2]).startswith(
        ORDERED + "pizza.sauce: Invalid enum value 'x - at"
    )


# --- the fast paths decide exactly as the general ones ----------------------------------------


def moved(headers, name, to):
    """The headers with `name` moved to position `to`."""
    rest = [h for h in headers if h[0] != name]
    return rest[:to] + [h for h in headers if h[0] == name] + rest[to:]


def days_from_now(days: float) -> bytes:
    return events.format_utc(datetime.now(UTC) + timedelta(days=days)).encode()


KEY, VALUE, HEADERS = record()
TIMES = [
    b"2026-11-25T12:00:04.123456Z",  # canonical: the fast path
    b"1970-01-01T00:00:00.000000Z",  # the epoch itself
    b"1969-12-31T23:59:59.999999Z",
    b"0001-01-01T00:00:00.000000Z",
    b"9999-12-31T23:59:59.999999Z",
    days_from_now(0.9),
    days_from_now(1.1),
    b"2026-02-29T12:00:00.000000Z",  # not a leap year
    b"2026-11-25T24:00:00.000000Z",
    b"2026-11-25T12:00:60.000000Z",
    b"2026-11-25T12:00:04Z",  # valid, not canonical
    b"2026-11-25T12:00:04.123Z",
    b"2026-11-25T12:00:04.1234567Z",
    b"2026-11-25T13:00:04.123456+01:00",
    b"2026-11-25T12:00:04.123456+00:00",
    b"2026-11-25 12:00:04.123456Z",
    b"2026-11-25T12:00:04,123456Z",
    b"2026-11-25T12:00:04.123456z",
    b"2026-W48-3T12:00:04.123456Z",
    b"20261125T120004.123456Z",
    "２０２６-11-25T12:00:04.123456Z".encode(),  # digits, but not ASCII ones
    b"2026-11-25T12:00:04.123456Z\n",
    b"2026-11-25T12:00:04.123456",
    b"\xff2026-11-25T12:00:04.123456Z",
    b"",
]
RECORDS = [
    pytest.param(KEY, VALUE, HEADERS, id="as encoded"),
    *(pytest.param(KEY, VALUE, record(ce_time=t)[2], id=f"ce_time={t!r}") for t in TIMES),
    pytest.param(KEY, VALUE, moved(HEADERS, "ce_time", 0), id="headers in another order"),
    pytest.param(KEY, VALUE, HEADERS[:-1], id="no content-type"),
    pytest.param(KEY, VALUE, [*HEADERS, ("traceparent", b"00-ab-cd-01")], id="one header more"),
    pytest.param(KEY, VALUE, [*HEADERS[:5], ("ce_time", b"yesterday"), *HEADERS[6:]], id="ce_time twice, last bad"),
    pytest.param(KEY, VALUE, [*HEADERS[:4], ("ce_time", b"soon"), *HEADERS[4:7]], id="ce_time twice, last good"),
    pytest.param(KEY, VALUE, [*HEADERS[:5], ("ce_type", b"x"), *HEADERS[6:]], id="ce_type twice"),
    pytest.param(KEY, VALUE, record(ce_id=None)[2] + [("ce_id", None)], id="ce_id without a value"),
    pytest.param(KEY, VALUE, [(n, None if n == "ce_time" else v) for n, v in HEADERS], id="ce_time without a value"),
    pytest.param(KEY, VALUE, record(ce_schemaversion=b"2")[2], id="a newer schema"),
    pytest.param(KEY, VALUE, record(ce_specversion=b"0.3")[2], id="an older spec"),
    pytest.param(KEY, VALUE, record(ce_id=b"\xff")[2], id="ce_id not UTF-8"),
    pytest.param(KEY, VALUE, [(n.upper(), v) for n, v in HEADERS], id="names in capitals"),
    pytest.param(b"f" * 32, VALUE, HEADERS, id="another key"),
    pytest.param(KEY, b"{}", HEADERS, id="invalid value"),
    pytest.param(KEY, None, HEADERS, id="no value"),
    pytest.param(KEY, VALUE, [], id="no headers"),
    pytest.param(KEY, VALUE, None, id="headers None"),
]


def outcome(model, key, value, headers):
    try:
        return events.decode(model, key, value, headers)
    except events.InvalidEvent as exc:
        return f"invalid: {exc}"


@pytest.mark.parametrize("key, value, headers", RECORDS)
def test_the_fast_paths_accept_and_refuse_exactly_what_the_general_ones_do(monkeypatch, key, value, headers):
    fast = outcome(PizzaOrdered, key, value, headers)
    monkeypatch.setattr(events.Decoder, "_fast", lambda self, key, value, headers: None)
    assert outcome(PizzaOrdered, key, value, headers) == fast


def test_the_fast_paths_are_taken_for_what_encode_writes():
    assert events._canonical_event_time(dict(HEADERS)["ce_time"]) == (AT, "2026-11-25T12:00:04.123456Z")
    event = events.decoder(PizzaOrdered)._fast(KEY, VALUE, HEADERS)
    assert event == events.decode(PizzaOrdered, KEY, VALUE, HEADERS)
    assert event.envelope.time_text == "2026-11-25T12:00:04.123456Z" and event.envelope.time == AT


def test_a_time_text_is_canonical_whatever_the_form_of_ce_time():
    event = events.decode(PizzaOrdered, *record(ce_time=b"2026-11-25T13:00:04.123456+01:00"))
    assert event.envelope.time_text == "2026-11-25T12:00:04.123456Z"
    event = events.decode(PizzaOrdered, *record(ce_time=b"2026-11-25T12:00:04Z"))
    assert event.envelope.time_text == "2026-11-25T12:00:04.000000Z"


def test_event_ids_are_distinct_version_4_uuids():
    ids = [events.new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # Every variant nibble (8, 9, a, b) occurs: its two low bits stay random.
    assert {text[19] for text in ids} == set("89ab")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 25, 12, 0, 4, 123456, tzinfo=UTC),
        datetime(2026, 11, 25, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 26, 0, 0, 0, 0, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ],
)
def test_now_as_text_is_format_utc_of_that_moment(monkeypatch, moment):
    nanos = (moment - events.EPOCH) // timedelta(microseconds=1) * 1000 + 999  # sub-microsecond cut off
    monkeypatch.setattr(timestamps.time, "time_ns", lambda: nanos)
    assert timestamps.now_utc_text() == timestamps.format_utc(moment) == events.format_utc()


def test_now_as_text_is_the_clocks_time_in_order():
    before = datetime.now(UTC)
    texts = [timestamps.now_utc_text() for _ in range(3)]
    after = datetime.now(UTC)
    assert all(before <= timestamps.parse_utc(t) <= after for t in texts)
    assert texts == sorted(texts)
