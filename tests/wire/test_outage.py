"""A dependency's going away and coming back: one line each, whatever happened between."""

import logging
from typing import Any

from wire.outage import Outage

logger = logging.getLogger("tests.wire.outage")


def test_an_outage_is_two_lines_however_many_calls_fail(caplog: Any) -> None:
    outage = Outage("Redis for the test", logger)
    caplog.set_level(logging.INFO, logger=logger.name)
    outage.answered()
    for n in range(50):
        outage.failed(ConnectionError(f"refused {n}"))
    assert outage.failing
    outage.answered()
    outage.answered()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "Redis for the test failing: ConnectionError: refused 0"
    assert lines[1].startswith("Redis for the test back after ")
    assert lines[1].endswith(" s (50 calls failed)")
    assert len(lines) == 2
    assert caplog.records[0].levelno == logging.WARNING
    assert caplog.records[0].exc_info is not None


def test_a_second_outage_is_logged_again(caplog: Any) -> None:
    outage = Outage("the database", logger)
    caplog.set_level(logging.INFO, logger=logger.name)
    outage.failed("no answer")
    outage.answered()
    outage.failed("no answer again")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "the database failing: no answer",
        lines[1],
        "the database failing: no answer again",
    ]
    assert not caplog.records[0].exc_info
