"""The suite's fixtures live in tests/helpers/fixtures.py."""
pytest_plugins = ('tests.helpers.fixtures',)
