"""The wire's constants for the pages' JavaScript: `{{ wire|json_script:"wire" }}` in
base.html gives every page `{"close": {"bad_room": 4400, ...}}` (static/site/wire.js reads it),
so Python and JavaScript share one definition."""

from typing import Any

from django.http import HttpRequest

from wire.close import Close

WIRE = {"close": {code.name.lower(): int(code) for code in Close}}


def wire(request: HttpRequest) -> dict[str, Any]:
    return {"wire": WIRE}
