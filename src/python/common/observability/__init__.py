"""How a service is seen from outside, on the ground floor (it imports nothing else of
`common`, so everything may use it): traces (`tracing`) and logs (`logs`). Metrics read
the running service, so they live beside the app factory (`common.metrics`)."""
