"""The data plane: front processes that own the edge port and serve InvokeEndpoint themselves.

``smemu serve`` runs the control process (the WSGI edge application: control plane, moto, S3,
everything stateful) and N front processes (``front``) that share the edge port. A front
parses every request, serves the invocations it can from its copy of the routing table
(``table``, ``invoke``, ``upstream``) straight to the containers, and forwards everything
else to the control process over a private Unix socket (``forward``). The control process
starts and supervises the fronts and publishes the routing table to them (``supervisor``,
``channel``). docs/architecture.md, "The data plane", has the whole picture.
"""
