# Fixtures shared by every test folder: the session's Kafka broker and real service processes.
pytest_plugins = ["shop_testing.pytest_plugin"]
