"""Load generator of the pizza shop: Locust customers driving the webapp's JSON API."""
