"""The REST API (``openmanus serve --api``): the LangGraph API that ``langgraph-sdk`` speaks.

One more front end over the session API (``runtime/api.py``), with no domain logic of its
own: threads are sessions, runs are ``AgentSession.run`` / ``resume`` driven by a pool of run
slots (``runs.py``), approvals are interrupts answered with ``command.resume``
(``decisions.py``), and the typed event stream is what the SSE stream is made of
(``stream.py``). ``app.py`` holds the routes, ``security.py`` the token and request limits,
``metrics.py`` the Prometheus metrics, ``server.py`` starts uvicorn. Never imports Textual.
"""
