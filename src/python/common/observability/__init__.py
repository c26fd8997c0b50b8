"""How a service is seen from outside: traces (`tracing`), metrics (`metrics`), logs
(`logs`)."""
