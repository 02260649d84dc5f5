# Fixtures shared by every test folder: the session's Kafka broker and real service processes.
pytest_plugins = ["local_kafka.pytest_plugin"]
