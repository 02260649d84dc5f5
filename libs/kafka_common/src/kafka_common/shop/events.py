"""The shop's event schemas: one payload model per topic, validated on consume.

Their wire format (JSON value, CloudEvents headers) is kafka_common.events.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from kafka_common.events import Payload
from kafka_common.shop import menu, topics
from kafka_common.shop.ids import CustomerId
from kafka_common.shop.status import BY_CODE, status_text

TYPE_PREFIX = "com.pizzashop."
MAX_EXTRA_TOPPINGS = len(menu.EXTRA_TOPPINGS)


class Pizza(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sauce: Literal[menu.SAUCES]  # type: ignore[valid-type]
    cheese: Literal[menu.CHEESES]  # type: ignore[valid-type]
    main_topping: Literal[menu.MAIN_TOPPINGS]  # type: ignore[valid-type]
    extra_toppings: tuple[Literal[menu.EXTRA_TOPPINGS], ...] = Field(  # type: ignore[valid-type]
        default=(), max_length=MAX_EXTRA_TOPPINGS
    )

    @field_validator("extra_toppings")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("extra toppings must not repeat")
        return value

    def seed(self) -> int:
        """The original's kitchen seed: last 4 hex digits of md5("sauce@cheese@extras@main")."""
        import hashlib

        recipe = f"{self.sauce}@{self.cheese}@{','.join(self.extra_toppings)}@{self.main_topping}"
        return int(hashlib.md5(recipe.encode()).hexdigest()[-4:], 16)


class PizzaOrdered(Payload):
    TOPIC = topics.PIZZA_ORDERED
    TYPE = TYPE_PREFIX + "pizza.ordered"

    customer_id: CustomerId
    username: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    pizza: Pizza


class PizzaAssembled(Payload):
    TOPIC = topics.PIZZA_ASSEMBLED
    TYPE = TYPE_PREFIX + "pizza.assembled"

    customer_id: CustomerId
    pizza: Pizza


class PizzaBaked(Payload):
    TOPIC = topics.PIZZA_BAKED
    TYPE = TYPE_PREFIX + "pizza.baked"

    # Carried so that delivery can deliver even without the early warning
    # (a restart, a rebalance, or pizza-baked overtaking pizza-ordered).
    customer_id: CustomerId


class PizzaStatus(Payload):
    TOPIC = topics.PIZZA_STATUS
    TYPE = TYPE_PREFIX + "pizza.status"

    status: int

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: int) -> int:
        if value not in BY_CODE:
            raise ValueError(f"unknown status code {value}")
        return value

    @property
    def status_text(self) -> str:
        return status_text(self.status)


PAYLOAD_BY_TOPIC: dict[str, type[Payload]] = {
    model.TOPIC: model for model in (PizzaOrdered, PizzaAssembled, PizzaBaked, PizzaStatus)
}
