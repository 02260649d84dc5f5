"""The menu: what a customer can put on a pizza."""

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
