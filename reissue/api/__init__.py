"""The front door: the partner HTTP API (`/v1`), with credentials, scopes and
problem+json errors. Partners never hold Temporal credentials, codec keys or the
workflow-ID secret; the API holds them and acts for them."""
