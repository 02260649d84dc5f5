"""The pizza shop's vocabulary, shared by every service: what the Kafka plumbing around it carries.

- menu: what a customer can put on a pizza.
- status: the order status codes, their text for customers and their short names.
- ids: order and customer ids (their patterns and how new ones are made).
- events: the event schemas, one per topic.
- topics: the topics, their settings, and `pizza-create-topics`.
- kitchen: what a kitchen handler decides (Step) and KITCHEN_TIME_SCALE.
- components: the shop's services and their local ports.
"""
