"""Log records as single lines, so that journald keeps each one (traceback included) whole."""

import logging


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")
