"""The sandbox's resource families: one module per family of Tavus routes, each a `Family`
(http.py) whose `routes()` the router (app.py) collects. State lives in state.py, timers and
callback delivery in lifecycle.py."""
