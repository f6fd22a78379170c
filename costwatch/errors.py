"""The error envelope's item, `{"field", "code", "message", ...}`, in one place
(docs/ingest.md#the-events-endpoint).

Free of Django REST framework, so code outside a request (the read parameters, late scores
applied by seed_demo) builds the same items as the API views; `costwatch.api` answers with them.
"""


def api_error(field, code, message, **extra):
    """One error: the field it names (None for the request as a whole), a code and a message."""
    return {"field": field, "code": code, "message": message, **extra}
