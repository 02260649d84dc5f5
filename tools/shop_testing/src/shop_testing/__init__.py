"""Test harness for the shop: the pytest plugin, real service processes, Kafka record readers, an HTTP customer."""
