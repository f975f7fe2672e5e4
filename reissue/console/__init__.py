"""The staff console: server-rendered pages for reviewers, supervisors, operations
and auditors, mounted at `/console` by the front-door service (`reissue api`)."""
