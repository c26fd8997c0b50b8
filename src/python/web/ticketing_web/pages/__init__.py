"""One module per area: home, auth, tickets, orders."""
