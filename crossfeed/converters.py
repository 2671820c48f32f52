"""URL converters. `<id:name>` is a database id: 1 to 18 digits, so every value fits a 64-bit integer column.

Django's `<int:…>` accepts any number of digits; an id past 2**63 - 1 then reaches the database, which cannot bind
it (SQLite raises OverflowError: a 500). With this converter such a URL simply matches nothing: 404.
"""

from django.urls import register_converter


class DatabaseIdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


register_converter(DatabaseIdConverter, "id")
