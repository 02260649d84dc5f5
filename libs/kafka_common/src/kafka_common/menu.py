"""The menu and the order statuses: the shop's vocabulary, shared by every service."""

from __future__ import annotations

SAUCES = ("Tomato", "Organic tomato", "Pesto", "Marinara", "Buffalo", "Hummus")
CHEESES = ("Mozzarella", "Provolone", "Cheddar", "Ricotta", "Gouda", "Gruyere")
MAIN_TOPPINGS = ("Pepperoni", "Sausage", "Chicken", "Pork", "Minced meat", "Vegan meat")
EXTRA_TOPPINGS = ("Mushroom", "Onion", "Eggs", "Black olives", "Green pepper", "Fresh garlic")

MENU = {
    "sauces": list(SAUCES),
    "cheeses": list(CHEESES),
    "main_toppings": list(MAIN_TOPPINGS),
    "extra_toppings": list(EXTRA_TOPPINGS),
}

STATUS_RECEIVED = 100
STATUS_IN_OVEN = 200
STATUS_OUT_FOR_DELIVERY = 300
STATUS_DELIVERED = 400
STATUS_DELIVERY_UNRESOLVED = -100

STATUS_TEXT = {
    STATUS_RECEIVED: "Order received and being prepared",
    STATUS_IN_OVEN: "Your pizza is in the oven",
    STATUS_OUT_FOR_DELIVERY: "Your pizza is out for delivery",
    STATUS_DELIVERED: "Your pizza was delivered",
    STATUS_DELIVERY_UNRESOLVED: "Delivery could not resolve the order",
}


def status_text(status: int) -> str:
    return STATUS_TEXT.get(status, "Something went wrong with your order" if status < 0 else "Unknown status")
