"""Hosting: models, endpoint configurations, endpoints, and the runtime that invokes them.

The control plane (:mod:`.service`) keeps records in the store and hands long work to
:mod:`.deployer`, which brings fleets of containers up through the runtime backend
(:mod:`.fleet`) and publishes them in the routing table (:mod:`.routing`). The runtime
(:mod:`.invoke`, :mod:`.streaming`, :mod:`.async_inference`) reads only the routing table,
so an invocation makes no Docker call and no store query.
"""
