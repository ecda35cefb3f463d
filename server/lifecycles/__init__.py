"""The lifecycles of a case and of a call: which state may follow which, on what event, and what
each state is called on the consoles.

Kept pure and in one place so that the stores, the SMS outbox, the call manager and the pages
(``GET /api/lifecycles``) agree, and every transition is a plain unit test.
"""
