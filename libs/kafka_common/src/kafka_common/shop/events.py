"""The shop's event schemas: one payload model per topic, validated on consume.

Their wire format (JSON value, CloudEvents headers) is kafka_common.events. The
constraints below (menu choices, id patterns, lengths) are checked when a record is
decoded, or when untrusted input goes through msgspec.convert; code that builds an
event from values it has already checked constructs it directly.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from kafka_common.events import Payload
from kafka_common.shop import menu, topics
from kafka_common.shop.ids import CustomerId
from kafka_common.shop.status import BY_CODE, status_text

TYPE_PREFIX = "com.pizzashop."
MAX_EXTRA_TOPPINGS = len(menu.EXTRA_TOPPINGS)
MAX_USERNAME_LENGTH = 32

Sauce = Literal[menu.SAUCES]  # type: ignore[valid-type]
Cheese = Literal[menu.CHEESES]  # type: ignore[valid-type]
MainTopping = Literal[menu.MAIN_TOPPINGS]  # type: ignore[valid-type]
ExtraTopping = Literal[menu.EXTRA_TOPPINGS]  # type: ignore[valid-type]
StatusCode = Literal[tuple(BY_CODE)]  # type: ignore[valid-type]
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USERNAME_LENGTH)]


class Pizza(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    sauce: Sauce
    cheese: Cheese
    main_topping: MainTopping
    extra_toppings: Annotated[tuple[ExtraTopping, ...], msgspec.Meta(max_length=MAX_EXTRA_TOPPINGS)] = ()

    def __post_init__(self) -> None:
        # Runs on decode and on construction alike: the one check msgspec has no constraint for.
        if len(set(self.extra_toppings)) != len(self.extra_toppings):
            repeated = next(t for i, t in enumerate(self.extra_toppings) if t in self.extra_toppings[:i])
            raise ValueError(f"extra_toppings lists {repeated!r} more than once")

    def to_json(self) -> str:
        """The pizza as the JSON text it has inside an event's value."""
        return msgspec.json.encode(self).decode()

    def as_dict(self) -> dict[str, object]:
        """The pizza as that JSON reads back: plain values, extra_toppings a list."""
        return {**msgspec.structs.asdict(self), "extra_toppings": list(self.extra_toppings)}

    def seed(self) -> int:
        """The original's kitchen seed: last 4 hex digits of md5("sauce@cheese@extras@main")."""
        import hashlib  # OpenSSL's libcrypto: loaded by the kitchen steps that cook, not by every importer

        recipe = f"{self.sauce}@{self.cheese}@{','.join(self.extra_toppings)}@{self.main_topping}"
        return int(hashlib.md5(recipe.encode()).hexdigest()[-4:], 16)


class PizzaOrdered(Payload, frozen=True):
    TOPIC = topics.PIZZA_ORDERED
    TYPE = TYPE_PREFIX + "pizza.ordered"

    customer_id: CustomerId
    username: Username
    pizza: Pizza


class PizzaAssembled(Payload, frozen=True):
    TOPIC = topics.PIZZA_ASSEMBLED
    TYPE = TYPE_PREFIX + "pizza.assembled"

    customer_id: CustomerId
    pizza: Pizza


class PizzaBaked(Payload, frozen=True):
    TOPIC = topics.PIZZA_BAKED
    TYPE = TYPE_PREFIX + "pizza.baked"

    # Carried so that delivery can deliver even without the early warning
    # (a restart, a rebalance, or pizza-baked overtaking pizza-ordered).
    customer_id: CustomerId


class PizzaStatus(Payload, frozen=True):
    TOPIC = topics.PIZZA_STATUS
    TYPE = TYPE_PREFIX + "pizza.status"

    status: StatusCode  # type: ignore[valid-type]

    @property
    def status_text(self) -> str:
        return status_text(self.status)


PAYLOAD_BY_TOPIC: dict[str, type[Payload]] = {
    model.TOPIC: model for model in (PizzaOrdered, PizzaAssembled, PizzaBaked, PizzaStatus)
}
