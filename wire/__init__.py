"""What crosses the wire the same way for every app: the shape of an error (HTTP JSON and
websocket frames alike) and the websocket close codes, defined once and handed to the pages'
JavaScript from that one definition (`wire.context`)."""
