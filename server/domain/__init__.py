"""The domain layer: every rule of Rollcall (sources and the SSO guard, credentials, sync, audit).

Protocol adapters call these functions with an open session and an :class:`Actor`; the
functions never commit (the caller's unit of work does) and raise :mod:`server.errors`.
"""
